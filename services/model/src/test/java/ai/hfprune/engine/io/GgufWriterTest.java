package ai.hfprune.engine.io;

import ai.hfprune.engine.io.GgufFile.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** GGUF files written here read back through {@link GgufFile}: every metadata type, tensor types, alignment. */
class GgufWriterTest {

    @TempDir
    Path tmp;

    @Test
    void metadataOfEveryTypeReadsBackWithItsType() {
        Map<String, GgufValue> m = new LinkedHashMap<>();
        m.put("u8", new GgufValue(GgufValue.UINT8, -1, 200));
        m.put("i8", new GgufValue(GgufValue.INT8, -1, -5));
        m.put("u16", new GgufValue(GgufValue.UINT16, -1, 60_000));
        m.put("i16", new GgufValue(GgufValue.INT16, -1, -30_000));
        m.put("u32", GgufValue.u32(4_000_000_000L));
        m.put("i32", new GgufValue(GgufValue.INT32, -1, -7));
        m.put("f32", GgufValue.f32(1e-5));
        m.put("bool", GgufValue.bool(true));
        m.put("string", GgufValue.string("▁héllo <0x0A>"));
        m.put("u64", new GgufValue(GgufValue.UINT64, -1, 1L << 40));
        m.put("i64", new GgufValue(GgufValue.INT64, -1, -(1L << 40)));
        m.put("f64", new GgufValue(GgufValue.FLOAT64, -1, Math.PI));
        m.put("ints", GgufValue.i32s(new int[] {98, 131, 0}));
        m.put("strings", new GgufValue(GgufValue.ARRAY, GgufValue.STRING, List.of("a", "", "▁b")));
        m.put("floats", new GgufValue(GgufValue.ARRAY, GgufValue.FLOAT32, List.of(-1.5f, 0f)));
        m.put("empty", new GgufValue(GgufValue.ARRAY, GgufValue.UINT32, List.of()));
        Path file = tmp.resolve("meta.gguf");
        GgufWriter.write(file, m, List.of());
        try (GgufFile gguf = GgufFile.open(file)) {
            assertEquals(m, gguf.typedMetadata());
            assertEquals(Map.of(), gguf.tensors());
        }
    }

    @Test
    void tensorsReadBackAlignedInEachType() throws Exception {
        SplittableRandom r = new SplittableRandom(5);
        float[] a = floats(r, 3 * 5, 3);
        float[] b = floats(r, 7 * 64, 1);
        b[3] = 0; // a block with a zero and a whole block of zeros (scale 0)
        for (int i = 64; i < 96; i++) {
            b[i] = 0;
        }
        Path file = tmp.resolve("tensors.gguf");
        GgufWriter.write(file, Map.of("general.architecture", GgufValue.string("test")), List.of(
                new GgufWriter.Tensor("a", new long[] {3, 5}, GgmlType.F32, () -> a),
                new GgufWriter.Tensor("a16", new long[] {15}, GgmlType.F16, () -> a),
                new GgufWriter.Tensor("b8", new long[] {7, 64}, GgmlType.Q8_0, () -> b)));
        try (GgufFile gguf = GgufFile.open(file)) {
            assertArrayEquals(new long[] {3, 5}, gguf.tensors().get("a").shape());
            assertEquals(GgmlType.Q8_0, gguf.tensors().get("b8").type());
            for (GgufFile.TensorInfo t : gguf.tensors().values()) {
                assertEquals(0, t.offset() % GgufWriter.ALIGNMENT, t.name() + " starts aligned");
            }
            assertArrayEquals(a, read(gguf, "a", 15), 0f);
            float[] half = new float[15];
            for (int i = 0; i < 15; i++) {
                half[i] = HalfFloats.f16ToFloat(HalfFloats.floatToF16(a[i]));
            }
            assertArrayEquals(half, read(gguf, "a16", 15), 0f);
            assertArrayEquals(q8Reference(b), read(gguf, "b8", 448), 0f);
        }
    }

    @Test
    void q8_0RoundsHalvesAwayFromZeroLikeC() {
        float[] x = new float[32];
        x[0] = 127; // d = 1, so x / d is x itself
        x[1] = 2.5f;
        x[2] = -2.5f;
        x[3] = 0.49f;
        ByteBuffer buf = ByteBuffer.allocate(34).order(ByteOrder.LITTLE_ENDIAN);
        GgufWriter.putQ8_0(x, 0, buf);
        assertEquals(1.0f, HalfFloats.f16ToFloat(buf.getShort(0)));
        assertEquals(127, buf.get(2));
        assertEquals(3, buf.get(3));
        assertEquals(-3, buf.get(4));
        assertEquals(0, buf.get(5));
    }

    @Test
    void refusesWhatItCannotWrite() {
        assertThrows(IllegalArgumentException.class,
                () -> new GgufWriter.Tensor("t", new long[] {2, 48}, GgmlType.Q8_0, () -> new float[96]));
        assertThrows(IllegalArgumentException.class,
                () -> new GgufWriter.Tensor("t", new long[] {2}, GgmlType.BF16, () -> new float[2]));
        Path file = tmp.resolve("bad.gguf");
        assertThrows(IllegalArgumentException.class, () -> GgufWriter.write(file,
                Map.of("general.alignment", GgufValue.u32(64)), List.of()));
        assertEquals(false, Files.exists(file));
    }

    /** ggml's Q8_0 by its definition, in doubles: d = max|x| / 127, q = round half away from zero of x / d. */
    private static float[] q8Reference(float[] x) {
        float[] out = new float[x.length];
        for (int block = 0; block < x.length / 32; block++) {
            double amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(x[block * 32 + j]));
            }
            float d = (float) amax / 127;
            float storedD = HalfFloats.f16ToFloat(HalfFloats.floatToF16(d));
            for (int j = 0; j < 32; j++) {
                float v = d == 0 ? 0 : x[block * 32 + j] * (1.0f / d);
                long q = Math.round(Math.abs(v)) * (long) Math.signum(v);
                out[block * 32 + j] = storedD * q;
            }
        }
        return out;
    }

    private static float[] read(GgufFile gguf, String name, int n) {
        float[] out = new float[n];
        gguf.readFloats(name, FloatBuffer.wrap(out));
        return out;
    }

    private static float[] floats(SplittableRandom r, int n, double bound) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) r.nextDouble(-bound, bound);
        }
        return out;
    }
}
