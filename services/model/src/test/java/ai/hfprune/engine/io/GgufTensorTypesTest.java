package ai.hfprune.engine.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * GGUF F32, F16, BF16 and Q8_0 tensors decode as ggml's published formats say. The file is written here byte by byte
 * (the real assets are all F32) and the expected floats are decoded from the raw bits by formulas independent of
 * {@link HalfFloats}. Each tensor but the first is larger than the reader's 4 MiB chunk, so chunk edges are crossed.
 */
class GgufTensorTypesTest {

    private record Raw(String name, long[] shape, int type, byte[] bytes, float[] expected) {
    }

    @Test
    void everyTensorTypeDecodesToTheValuesItsBitsEncode(@TempDir Path dir) throws IOException {
        SplittableRandom r = new SplittableRandom(3);
        List<Raw> tensors = List.of(f32(r, 3, 5), f16(r, 1_200, 2_000), bf16(r, 2_100_000), q8_0(r, 128, 40_000));
        Path file = dir.resolve("types.gguf");
        write(file, tensors);

        try (GgufFile gguf = GgufFile.open(file)) {
            for (Raw t : tensors) {
                float[] got = new float[t.expected().length];
                gguf.readFloats(t.name(), java.nio.FloatBuffer.wrap(got));
                assertArrayEquals(t.expected(), got, 0f, t.name());
            }
            assertArrayEquals(new long[] {3, 5}, gguf.tensors().get("f32").shape(), "shapes in PyTorch order");
        }
    }

    @Test
    void referenceDecodersAgreeWithKnownValues() {
        assertEquals(1.0f, f16Reference((short) 0x3C00));
        assertEquals(-2.0f, f16Reference((short) 0xC000));
        assertEquals(65504f, f16Reference((short) 0x7BFF));
        assertEquals(0x1p-24f, f16Reference((short) 0x0001), "smallest subnormal");
        assertEquals(Float.NEGATIVE_INFINITY, f16Reference((short) 0xFC00));
    }

    private static Raw f32(SplittableRandom r, long... dims) {
        int n = (int) (dims[0] * dims[1]);
        ByteBuffer b = le(n * 4);
        float[] expected = new float[n];
        for (int i = 0; i < n; i++) {
            expected[i] = (float) r.nextDouble(-3, 3);
            b.putFloat(expected[i]);
        }
        return new Raw("f32", dims, 0, b.array(), expected);
    }

    private static Raw f16(SplittableRandom r, long... dims) {
        int n = (int) (dims[0] * dims[1]);
        ByteBuffer b = le(n * 2);
        float[] expected = new float[n];
        for (int i = 0; i < n; i++) {
            short bits = (short) r.nextInt(0x7C00); // every finite non-negative half, subnormals included
            bits |= (short) (r.nextBoolean() ? 0x8000 : 0);
            b.putShort(bits);
            expected[i] = f16Reference(bits);
        }
        return new Raw("f16", dims, 1, b.array(), expected);
    }

    private static Raw bf16(SplittableRandom r, long n) {
        ByteBuffer b = le((int) n * 2);
        float[] expected = new float[(int) n];
        for (int i = 0; i < n; i++) {
            short bits = (short) (Float.floatToRawIntBits((float) r.nextDouble(-100, 100)) >>> 16);
            b.putShort(bits);
            expected[i] = Float.intBitsToFloat((bits & 0xFFFF) << 16);
        }
        return new Raw("bf16", new long[] {n}, 30, b.array(), expected);
    }

    /** Q8_0: blocks of 32 values, each an fp16 scale d followed by 32 int8 q; the value is d * q. */
    private static Raw q8_0(SplittableRandom r, long... dims) {
        int n = (int) (dims[0] * dims[1]);
        ByteBuffer b = le(n / 32 * 34);
        float[] expected = new float[n];
        for (int block = 0; block < n / 32; block++) {
            short d = (short) (0x2000 + r.nextInt(0x2000)); // positive normal scales
            b.putShort(d);
            for (int i = 0; i < 32; i++) {
                byte q = (byte) r.nextInt(-127, 128);
                b.put(q);
                expected[block * 32 + i] = f16Reference(d) * q;
            }
        }
        return new Raw("q8_0", dims, 8, b.array(), expected);
    }

    /** IEEE 754 binary16 by its definition: (-1)^s · 2^(e-15) · (1 + m/1024), subnormals 2^-14 · m/1024. */
    private static float f16Reference(short bits) {
        int s = (bits >> 15) & 1;
        int e = (bits >> 10) & 0x1F;
        int m = bits & 0x3FF;
        double v = e == 0 ? Math.scalb(m / 1024.0, -14)
                : e == 31 ? (m == 0 ? Double.POSITIVE_INFINITY : Double.NaN)
                : Math.scalb(1 + m / 1024.0, e - 15);
        return (float) (s == 1 ? -v : v);
    }

    /** GGUF v3 with no metadata: header, tensor infos, data aligned to the default 32 bytes. */
    private static void write(Path file, List<Raw> tensors) throws IOException {
        ByteBuffer head = le(1 << 16);
        head.putInt(0x46554747).putInt(3).putLong(tensors.size()).putLong(0);
        List<Long> offsets = new ArrayList<>();
        long offset = 0;
        for (Raw t : tensors) {
            byte[] name = t.name().getBytes(StandardCharsets.UTF_8);
            head.putLong(name.length).put(name).putInt(t.shape().length);
            for (int d = t.shape().length - 1; d >= 0; d--) {
                head.putLong(t.shape()[d]); // innermost first
            }
            head.putInt(t.type()).putLong(offset);
            offsets.add(offset);
            offset = (offset + t.bytes().length + 31) / 32 * 32;
        }
        while (head.position() % 32 != 0) {
            head.put((byte) 0);
        }
        head.flip();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.write(head);
            long dataStart = ch.position();
            for (int i = 0; i < tensors.size(); i++) {
                ch.write(ByteBuffer.wrap(tensors.get(i).bytes()), dataStart + offsets.get(i));
            }
        }
    }

    private static ByteBuffer le(int bytes) {
        return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }
}
