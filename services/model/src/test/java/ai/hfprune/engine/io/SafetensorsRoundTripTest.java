package ai.hfprune.engine.io;

import ai.hfprune.engine.io.SafetensorsSource.Dtype;
import ai.hfprune.engine.io.SafetensorsWriter.Tensor;
import ai.hfprune.engine.model.HfConfigs;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.WeightCheck;
import ai.hfprune.engine.testing.TinyCheckpoints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsRoundTripTest {

    @TempDir
    Path dir;

    /** Ordinary values plus the edge cases of each format: signed zero, subnormals, extremes, infinities, NaN. */
    private static float[] testValues() {
        List<Float> v = new ArrayList<>(List.of(0f, -0f, 1f, -1.5f, 0.1f, 1e-40f, Float.MIN_VALUE, 1e-8f, 6e-5f,
                65504f, 65520f, 1e6f, Float.MAX_VALUE, -Float.MAX_VALUE, Float.POSITIVE_INFINITY,
                Float.NEGATIVE_INFINITY, Float.NaN));
        Random rnd = new Random(7);
        for (int i = 0; i < 1000; i++) {
            v.add((float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(9) - 4)));
        }
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i);
        }
        return out;
    }

    private float[] roundTrip(float[] values, Dtype dtype) {
        SafetensorsWriter.write(dir, List.of(Tensor.of("t", new long[] {values.length}, values)), dtype);
        try (SafetensorsSource s = SafetensorsSource.open(dir)) {
            assertEquals(Set.of("t"), s.names());
            assertArrayEquals(new long[] {values.length}, s.shape("t"));
            assertEquals(dtype, s.dtype("t"));
            return s.readFloats("t");
        }
    }

    @Test
    void f32RoundTripIsExact() {
        float[] values = testValues();
        assertArrayEquals(values, roundTrip(values, Dtype.F32));
    }

    @Test
    void f16RoundTripEqualsF16Rounding() {
        float[] values = testValues();
        float[] back = roundTrip(values, Dtype.F16);
        for (int i = 0; i < values.length; i++) {
            assertEquals(HalfFloats.f16ToFloat(HalfFloats.floatToF16(values[i])), back[i], "value " + values[i]);
        }
        // Hand-checked binary16 roundings (10 mantissa bits, ties to even, max 65504).
        float[] hand = {1 + 0x1p-11f, 1 + 3 * 0x1p-11f, 65520f, 1e-8f, 0x1p-24f};
        float[] expected = {1f, 1 + 0x1p-9f, Float.POSITIVE_INFINITY, 0f, 0x1p-24f};
        assertArrayEquals(expected, roundTrip(hand, Dtype.F16));
    }

    @Test
    void bf16RoundTripEqualsIndependentlyComputedRounding() {
        float[] values = testValues();
        float[] back = roundTrip(values, Dtype.BF16);
        for (int i = 0; i < values.length; i++) {
            assertEquals(bf16Expected(values[i]), back[i], "value " + values[i]);
        }
        // Hand-checked bfloat16 roundings (7 mantissa bits, ties to even).
        float[] hand = {1 + 0x1p-8f, 1 + 3 * 0x1p-8f, -(1 + 3 * 0x1p-8f), 1 + 0x1p-8f + 0x1p-20f, Float.MAX_VALUE};
        float[] expected = {1f, 1 + 0x1p-6f, -(1 + 0x1p-6f), 1 + 0x1p-7f, Float.POSITIVE_INFINITY};
        assertArrayEquals(expected, roundTrip(hand, Dtype.BF16));
    }

    /**
     * Round-to-nearest-even to bfloat16, computed without HalfFloats: pick the nearer of the two bfloat16 neighbours
     * in exact double arithmetic, the one with an even last mantissa bit on a tie.
     */
    private static float bf16Expected(float x) {
        if (Float.isNaN(x) || Float.isInfinite(x)) {
            return x;
        }
        int bits = Float.floatToRawIntBits(x);
        float lo = Float.intBitsToFloat(bits & 0xffff0000); // truncated toward zero
        double ulp = Math.ulp(lo) * 65536.0; // bfloat16 spacing: 16 fewer mantissa bits than float
        double hi = lo + Math.copySign(ulp, x);
        double dLo = Math.abs((double) x - lo);
        double dHi = Math.abs(hi - x);
        boolean loEven = ((bits >>> 16) & 1) == 0;
        return dLo < dHi || (dLo == dHi && loEven) ? lo : (float) hi;
    }

    @Test
    void bf16BytesAndHeaderLayoutFollowTheFormat() throws IOException {
        SafetensorsWriter.write(dir, List.of(
                Tensor.of("a", new long[] {2}, new float[] {1f, 1 + 3 * 0x1p-8f}),
                Tensor.of("b.weight", new long[] {1, 3}, new float[] {-2f, 0f, 0.5f})), Dtype.BF16);
        byte[] file = Files.readAllBytes(dir.resolve("model.safetensors"));
        ByteBuffer buf = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        long n = buf.getLong(0);
        assertEquals(0, n % 8, "header padded to a multiple of 8");
        String header = new String(file, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{"));
        JsonNode json = new ObjectMapper().readTree(header.strip());
        assertEquals("pt", json.get("__metadata__").get("format").asText());
        assertEquals("BF16", json.get("a").get("dtype").asText());
        assertEquals("[0,4]", json.get("a").get("data_offsets").toString());
        assertEquals("[1,3]", json.get("b.weight").get("shape").toString());
        assertEquals("[4,10]", json.get("b.weight").get("data_offsets").toString());
        assertEquals(8 + n + 10, file.length);
        // Little-endian bfloat16: 1.0 = 0x3f80, 1 + 2^-6 = 0x3f82, -2 = 0xc000.
        assertEquals((short) 0x3f80, buf.getShort((int) (8 + n)));
        assertEquals((short) 0x3f82, buf.getShort((int) (8 + n + 2)));
        assertEquals((short) 0xc000, buf.getShort((int) (8 + n + 4)));
    }

    @Test
    void readFloatsFillsFromTheBufferPosition() {
        SafetensorsWriter.write(dir, List.of(Tensor.of("t", new long[] {3}, new float[] {1, 2, 3})), Dtype.F16);
        try (SafetensorsSource s = SafetensorsSource.open(dir)) {
            FloatBuffer dst = FloatBuffer.allocate(5);
            dst.put(9f);
            s.readFloats("t", dst);
            assertEquals(4, dst.position());
            assertArrayEquals(new float[] {9, 1, 2, 3, 0}, dst.array());
        }
    }

    @Test
    void shardedBf16CheckpointReadsBackLikeTheSingleFile(@TempDir Path single, @TempDir Path sharded) throws IOException {
        long maxShard = 10_000;
        ModelConfig c = TinyCheckpoints.writeTinyRandom(single, "LlamaForCausalLM", 42, "BF16", SafetensorsWriter.NO_SHARDING);
        TinyCheckpoints.writeTinyRandom(sharded, "LlamaForCausalLM", 42, "BF16", maxShard);
        assertTrue(Files.exists(single.resolve("model.safetensors")));
        assertFalse(Files.exists(sharded.resolve("model.safetensors")));

        // The HF layout: model-0000k-of-0000N.safetensors and an index with total_size and a complete weight_map.
        JsonNode index = new ObjectMapper().readTree(sharded.resolve("model.safetensors.index.json").toFile());
        List<Tensor> tensors = TinyCheckpoints.randomTensors(c, 42);
        long totalSize = tensors.stream().mapToLong(t -> t.numel() * 2).sum();
        assertEquals(totalSize, index.get("metadata").get("total_size").asLong());
        JsonNode weightMap = index.get("weight_map");
        assertEquals(tensors.size(), weightMap.size());
        Set<String> shardFiles = new HashSet<>();
        weightMap.forEach(f -> shardFiles.add(f.asText()));
        int n = shardFiles.size();
        assertTrue(n > 1, "expected several shards, got " + n);
        for (int k = 1; k <= n; k++) {
            String name = String.format("model-%05d-of-%05d.safetensors", k, n);
            assertTrue(shardFiles.contains(name), name);
            Path shard = sharded.resolve(name);
            long header = ByteBuffer.wrap(Files.readAllBytes(shard), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            assertTrue(Files.size(shard) - 8 - header <= maxShard, name + " exceeds the shard size");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            assertTrue(Files.exists(sharded.resolve(e.getValue().asText())), e.getKey());
        }

        try (SafetensorsSource a = SafetensorsSource.open(single); SafetensorsSource b = SafetensorsSource.open(sharded)) {
            assertEquals(a.names(), b.names());
            WeightCheck.checkShapes(HfConfigs.read(sharded), b);
            for (Tensor t : tensors) {
                assertArrayEquals(t.shape(), b.shape(t.name()));
                float[] expected = t.data().get().clone();
                for (int i = 0; i < expected.length; i++) {
                    expected[i] = HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(expected[i]));
                }
                assertArrayEquals(expected, a.readFloats(t.name()), t.name());
                assertArrayEquals(expected, b.readFloats(t.name()), t.name());
            }
        }
    }

    @Test
    void rewritingReplacesTheEarlierCheckpoint() throws IOException {
        TinyCheckpoints.writeTinyRandom(dir, "Qwen2ForCausalLM", 1, "F32", 5_000);
        assertTrue(Files.exists(dir.resolve("model.safetensors.index.json")));
        TinyCheckpoints.writeTinyRandom(dir, "Qwen2ForCausalLM", 2, "F16", SafetensorsWriter.NO_SHARDING);
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(Set.of("config.json", "model.safetensors"),
                    files.map(p -> p.getFileName().toString()).collect(java.util.stream.Collectors.toSet()));
        }
        try (SafetensorsSource s = SafetensorsSource.open(dir)) {
            assertEquals(Dtype.F16, s.dtype("model.embed_tokens.weight"));
        }
    }

    @Test
    void everyArchitectureWritesACheckpointThatPassesTheShapeCheck() {
        for (String arch : List.of("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM")) {
            Path d = dir.resolve(arch);
            ModelConfig c = TinyCheckpoints.writeTinyRandom(d, arch, 3, "F32", SafetensorsWriter.NO_SHARDING);
            assertEquals(c, HfConfigs.read(d));
            try (SafetensorsSource s = SafetensorsSource.open(d)) {
                WeightCheck.checkShapes(c, s);
                assertEquals(c.attentionBias(), s.has("model.layers.0.self_attn.q_proj.bias"), arch);
                assertEquals(c.qkNorm(), s.has("model.layers.1.self_attn.k_norm.weight"), arch);
                assertEquals(!c.tieWordEmbeddings(), s.has("lm_head.weight"), arch);
            }
        }
    }
}
