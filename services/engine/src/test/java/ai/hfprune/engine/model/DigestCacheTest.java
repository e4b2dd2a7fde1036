package ai.hfprune.engine.model;

import ai.hfprune.engine.testing.ProcessIo;
import ai.hfprune.engine.testing.TinyCheckpoints;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A model's identity without reading its weights: the digest cache returns the sha256 the files really have (checked
 * against a digest computed here), forgets it when a file changes, and lets a multi-GB checkpoint be opened and
 * identified — all the aggregator and the sampler do with a model — reading kilobytes, not gigabytes (Linux's
 * /proc/self/io counts the bytes read).
 */
class DigestCacheTest {

    @AfterEach
    void clearProperty() {
        System.clearProperty("hfprune.digest.cache");
    }

    @Test
    void theCachedDigestIsTheFilesAndAChangedFileIsDigestedAgain(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("model");
        TinyCheckpoints.writeTinyRandom(model, "LlamaForCausalLM", 3, "F32", Long.MAX_VALUE);
        Path cacheDir = dir.resolve("cache");
        System.setProperty("hfprune.digest.cache", cacheDir.toString());
        Path weights = model.resolve("model.safetensors");
        DigestCache cache = new DigestCache(cacheDir);

        assertEquals(Optional.empty(), cache.lookup(List.of(weights)));
        String first;
        try (Checkpoint c = Checkpoint.open(model)) {
            first = c.sha256();
        }
        assertEquals(sha256(weights), first);
        assertEquals(Optional.of(first), cache.lookup(List.of(weights)), "stored on first use");

        // A remembered digest is what the next process gets: prove it comes from the cache by planting another one.
        String planted = "ab".repeat(32);
        cache.store(List.of(weights), planted);
        try (Checkpoint c = Checkpoint.open(model)) {
            assertEquals(planted, c.sha256());
        }

        // Rewrite one byte of a weight, size unchanged: the key (time, and here the same inode) no longer matches.
        byte[] bytes = Files.readAllBytes(weights);
        bytes[bytes.length - 1] ^= 1;
        FileTime before = Files.getLastModifiedTime(weights);
        Files.write(weights, bytes);
        Files.setLastModifiedTime(weights, FileTime.fromMillis(before.toMillis() + 2000));
        try (Checkpoint c = Checkpoint.open(model)) {
            assertEquals(sha256(weights), c.sha256());
            assertNotEquals(first, c.sha256());
        }
    }

    @Test
    void offMeansNoCache(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("model");
        TinyCheckpoints.writeTinyRandom(model, "LlamaForCausalLM", 3, "F32", Long.MAX_VALUE);
        System.setProperty("hfprune.digest.cache", "off");
        assertEquals(Optional.empty(), DigestCache.configured());
        try (Checkpoint c = Checkpoint.open(model)) {
            assertEquals(sha256(model.resolve("model.safetensors")), c.sha256());
        }
        System.setProperty("hfprune.digest.cache", dir.resolve("unwritable-because-a-file").toString());
        Files.writeString(dir.resolve("unwritable-because-a-file"), "x");
        try (Checkpoint c = Checkpoint.open(model)) { // a cache that cannot be written is skipped, not an error
            assertEquals(sha256(model.resolve("model.safetensors")), c.sha256());
        }
    }

    /** 2.1 GB of float32 weights (a 520,000-token vocabulary, sparse on disk): identified from the cache reading almost nothing. */
    @Test
    void aMultiGigabyteCheckpointIsIdentifiedWithoutReadingItsWeights(@TempDir Path dir) throws Exception {
        assumeTrue(ProcessIo.available(), "needs Linux's /proc/self/io");
        Path model = dir.resolve("big");
        long weightBytes = writeSparseCheckpoint(model);
        System.setProperty("hfprune.digest.cache", dir.resolve("cache").toString());

        long read0 = ProcessIo.bytesRead();
        String digest;
        try (Checkpoint c = Checkpoint.open(model)) { // the first process on the machine (a scorer, say) digests it
            digest = c.sha256();
        }
        long firstRead = ProcessIo.bytesRead() - read0;
        assertTrue(firstRead >= weightBytes, "the measurement sees the digest's reads: " + firstRead + " bytes");

        long read1 = ProcessIo.bytesRead();
        try (Checkpoint c = Checkpoint.open(model)) { // the aggregator and the sampler: open, widths, identity
            assertEquals(digest, c.sha256());
            assertEquals(1, WeightCheck.layerWidths(c.config(), c.weights()).numLayers());
        }
        long secondRead = ProcessIo.bytesRead() - read1;
        System.out.printf("weights %d MB; read while digesting %d MB, while identifying from the cache %d KB%n",
                weightBytes >> 20, firstRead >> 20, secondRead >> 10);
        assertTrue(secondRead < 4L << 20, "identifying from the cache read " + secondRead + " bytes");
    }

    /** config.json and one safetensors file of zeros (a hole), Llama with tied embeddings: returns the data's size. */
    private static long writeSparseCheckpoint(Path dir) throws IOException {
        ModelConfig c = new ModelConfig("LlamaForCausalLM", 520_000, 1024, 64, 1, 8, 8, 128, 1e-5, 10_000.0, 2048, true,
                false, false, RopeStyle.HALF, 1, 2);
        HfConfigs.write(c, dir);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("model.embed_tokens.weight", new long[] {520_000, 1024});
        shapes.put("model.layers.0.input_layernorm.weight", new long[] {1024});
        shapes.put("model.layers.0.mlp.down_proj.weight", new long[] {1024, 64});
        shapes.put("model.layers.0.mlp.gate_proj.weight", new long[] {64, 1024});
        shapes.put("model.layers.0.mlp.up_proj.weight", new long[] {64, 1024});
        shapes.put("model.layers.0.post_attention_layernorm.weight", new long[] {1024});
        shapes.put("model.layers.0.self_attn.q_proj.weight", new long[] {1024, 1024});
        shapes.put("model.layers.0.self_attn.k_proj.weight", new long[] {1024, 1024});
        shapes.put("model.layers.0.self_attn.v_proj.weight", new long[] {1024, 1024});
        shapes.put("model.layers.0.self_attn.o_proj.weight", new long[] {1024, 1024});
        shapes.put("model.norm.weight", new long[] {1024});
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        long offset = 0;
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            long bytes = 4;
            for (long d : e.getValue()) {
                bytes *= d;
            }
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", "F32");
            t.putArray("shape").add(e.getValue()[0]);
            if (e.getValue().length > 1) {
                ((com.fasterxml.jackson.databind.node.ArrayNode) t.get("shape")).add(e.getValue()[1]);
            }
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] text = json.writeValueAsBytes(header);
        int padded = (text.length + 7) / 8 * 8;
        byte[] headerBytes = new byte[padded];
        java.util.Arrays.fill(headerBytes, (byte) ' ');
        System.arraycopy(text, 0, headerBytes, 0, text.length);
        try (RandomAccessFile file = new RandomAccessFile(dir.resolve("model.safetensors").toFile(), "rw")) {
            file.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
            file.write(headerBytes);
            file.setLength(8 + padded + offset); // a hole: zeros, taking no disk space
        }
        return offset;
    }

    private static String sha256(Path file) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }
}
