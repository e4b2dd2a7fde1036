package ai.hfprune.engine.compensate;

import ai.hfprune.engine.HfpruneException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The statistics file: an exact round trip, the safetensors layout byte by byte, and refusals of broken files. */
class GramFileTest {

    @TempDir
    Path tmp;

    private static GramStats random(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[][] mlp = {r.doubles(9).toArray(), r.doubles(16).toArray()};
        double[][] attn = {r.doubles(4).toArray(), r.doubles(1).toArray()};
        return new GramStats(1234, 17, mlp, attn);
    }

    private static GramStats withSensitivity(long seed) {
        GramStats g = random(seed);
        SplittableRandom r = new SplittableRandom(seed + 100);
        double[][] mlpOut = {r.doubles(5).toArray(), r.doubles(5).toArray()};
        double[][] attnOut = {r.doubles(5).toArray(), r.doubles(5).toArray()};
        return new GramStats(g.tokens(), g.windows(), g.mlp(), g.attn(), mlpOut, attnOut);
    }

    @Test
    void roundTripsTheOutputSensitivitiesExactly() throws Exception {
        GramStats stats = withSensitivity(4);
        Path file = tmp.resolve("stats.safetensors");
        GramFile.write(file, "m", "abc", 64, stats);
        GramStats back = GramFile.read(file).stats();
        assertTrue(back.hasSensitivity());
        for (int l = 0; l < 2; l++) {
            assertArrayEquals(stats.mlp()[l], back.mlp()[l]);
            assertArrayEquals(stats.attn()[l], back.attn()[l]);
            assertArrayEquals(stats.mlpOutputSensitivity()[l], back.mlpOutputSensitivity()[l]);
            assertArrayEquals(stats.attnOutputSensitivity()[l], back.attnOutputSensitivity()[l]);
        }
        String header = new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
        // layer 0: mlp 9 values, attn 4, then attn and mlp sensitivities of 5: the mlp one starts at 8·18 = 144
        assertTrue(header.contains("\"layers.0.mlp_out_sensitivity\":{\"dtype\":\"F64\",\"shape\":[5],\"data_offsets\":[144,184]}"),
                header);
        assertTrue(!GramFile.read(writeWithout()).stats().hasSensitivity(), "a file without them reads without them");
    }

    private Path writeWithout() {
        Path file = tmp.resolve("without.safetensors");
        GramFile.write(file, "m", "abc", 64, random(5));
        return file;
    }

    @Test
    void sumsKeepTheSensitivitiesOnlyWhenBothHaveThem() {
        GramStats a = withSensitivity(6);
        GramStats sum = a.plus(withSensitivity(7));
        assertTrue(sum.hasSensitivity());
        assertEquals(a.mlpOutputSensitivity()[1][2] + withSensitivity(7).mlpOutputSensitivity()[1][2],
                sum.mlpOutputSensitivity()[1][2], 0);
        assertTrue(!a.plus(random(8)).hasSensitivity(), "a sum over some of the tokens only is not kept");
    }

    @Test
    void roundTripsExactly() {
        GramStats stats = random(1);
        Path file = tmp.resolve("stats.safetensors");
        GramFile.write(file, "m", "abc", 64, stats);
        GramFile.Contents back = GramFile.read(file);
        assertEquals("m", back.modelName());
        assertEquals("abc", back.modelSha256());
        assertEquals(64, back.seqLen());
        assertEquals(1234, back.stats().tokens());
        assertEquals(17, back.stats().windows());
        for (int l = 0; l < 2; l++) {
            assertArrayEquals(stats.mlp()[l], back.stats().mlp()[l]);
            assertArrayEquals(stats.attn()[l], back.stats().attn()[l]);
        }
    }

    /** The safetensors layout: u64 header length, a JSON header padded to 8 bytes, then little-endian F64 data. */
    @Test
    void isASafetensorsFile() throws Exception {
        GramStats stats = random(2);
        Path file = tmp.resolve("stats.safetensors");
        GramFile.write(file, "m", "abc", 64, stats);
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long headerLength = b.getLong();
        assertEquals(0, headerLength % 8);
        String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
        assertTrue(header.contains("\"layers.1.mlp_gram\":{\"dtype\":\"F64\",\"shape\":[4,4],\"data_offsets\":[104,232]}"), header);
        assertEquals(8 + headerLength + 8 * (9 + 4 + 16 + 1), bytes.length);
        // layer 1's MLP Gram starts after layer 0's (9 + 4 values)
        assertEquals(stats.mlp()[1][0], b.getDouble((int) (8 + headerLength + 104)));
    }

    @Test
    void brokenFilesAreRefused() throws Exception {
        Path file = tmp.resolve("stats.safetensors");
        GramFile.write(file, "m", "abc", 64, random(3));
        byte[] bytes = Files.readAllBytes(file);
        Path truncated = tmp.resolve("truncated.safetensors");
        Files.write(truncated, Arrays.copyOf(bytes, bytes.length - 8));
        assertTrue(assertThrows(HfpruneException.class, () -> GramFile.read(truncated)).getMessage().contains("bytes"));
        Path scores = tmp.resolve("other.safetensors");
        Files.writeString(scores, "{\"format\":\"hfprune.scores/1\"}");
        assertTrue(assertThrows(HfpruneException.class, () -> GramFile.read(scores)).getMessage().contains("not a statistics file"));
    }
}
