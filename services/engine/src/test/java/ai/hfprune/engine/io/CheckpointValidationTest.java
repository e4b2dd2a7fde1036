package ai.hfprune.engine.io;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.SafetensorsSource.Dtype;
import ai.hfprune.engine.io.SafetensorsWriter.Tensor;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.HfConfigs;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.WeightCheck;
import ai.hfprune.engine.testing.TinyCheckpoints;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Broken checkpoints must fail with an HfpruneException that says what is wrong and where. */
class CheckpointValidationTest {

    @TempDir
    Path dir;

    private static void assertFails(Executable action, String... fragments) {
        HfpruneException e = assertThrows(HfpruneException.class, action);
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "message lacks \"" + f + "\": " + e.getMessage());
        }
    }

    /** A safetensors file with the given header length field, header text and data bytes. */
    private Path rawFile(long headerLength, String header, int dataBytes) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(headerLength).put(json);
        Path file = dir.resolve("model.safetensors");
        Files.write(file, b.array());
        return file;
    }

    private Path rawFile(String header, int dataBytes) throws IOException {
        return rawFile(header.getBytes(StandardCharsets.UTF_8).length, header, dataBytes);
    }

    private static void open(Path dir) {
        SafetensorsSource.open(dir).close();
    }

    @Test
    void truncatedFile() throws IOException {
        TinyCheckpoints.writeTinyRandom(dir, "LlamaForCausalLM", 1, "F16", SafetensorsWriter.NO_SHARDING);
        Path file = dir.resolve("model.safetensors");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() - 10); // the last tensor, lm_head.weight, loses its end
        }
        assertFails(() -> open(dir), "model.safetensors", "truncated", "lm_head.weight");
    }

    @Test
    void fileShorterThanTheHeaderLength() throws IOException {
        Files.write(dir.resolve("model.safetensors"), new byte[] {1, 2, 3});
        assertFails(() -> open(dir), "model.safetensors", "truncated", "8-byte");
    }

    @Test
    void corruptHeaderThatIsNotJson() throws IOException {
        rawFile("{\"w\": {\"dtype\": \"F32\", garbage", 16);
        assertFails(() -> open(dir), "model.safetensors", "header is not valid JSON");
    }

    @Test
    void headerLengthBeyondTheFile() throws IOException {
        rawFile(1000, "{}", 0);
        assertFails(() -> open(dir), "model.safetensors", "header length 1000 points beyond the end of the file (10 bytes)");
    }

    @Test
    void implausibleHeaderLength() throws IOException {
        rawFile(-1, "{}", 0);
        assertFails(() -> open(dir), "model.safetensors", "implausible header length 18446744073709551615");
    }

    @Test
    void dataOffsetsBeyondTheFile() throws IOException {
        rawFile("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [1000, 1008]}}", 8);
        assertFails(() -> open(dir), "model.safetensors", "tensor w", "[1000, 1008]", "past the end of the file");
    }

    @Test
    void dataOffsetsInconsistentWithShape() throws IOException {
        rawFile("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8);
        assertFails(() -> open(dir), "model.safetensors", "tensor w", "spanning 8 bytes", "needs 12");
    }

    @Test
    void tensorsThatOverlapAreRefused() throws IOException {
        // b's bytes are the second half of a's: reading b would silently give a's weights
        rawFile("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                + " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12);
        assertFails(() -> open(dir), "model.safetensors", "tensor b (data_offsets [4, 12]) overlaps tensor a (data_offsets [0, 8])");
    }

    @Test
    void aGapBetweenTensorsIsRefused() throws IOException {
        rawFile("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                + " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", 12);
        assertFails(() -> open(dir), "model.safetensors", "4 bytes at data offset 4 belong to no tensor", "after a", "before b");
    }

    @Test
    void aGapBeforeTheFirstTensorIsRefused() throws IOException {
        rawFile("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8);
        assertFails(() -> open(dir), "model.safetensors", "4 bytes at data offset 0 belong to no tensor", "before the first tensor");
    }

    @Test
    void bytesAfterTheLastTensorAreRefused() throws IOException {
        rawFile("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 6);
        assertFails(() -> open(dir), "model.safetensors", "its last 2 bytes (from data offset 4) belong to no tensor");
    }

    @Test
    void tensorsInAnyOrderThatTileTheDataAreRead() throws IOException {
        // written in reverse order, and an empty tensor: a valid layout
        rawFile("{\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
                + " \"e\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]},"
                + " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8);
        open(dir);
    }

    @Test
    void unknownDtype() throws IOException {
        rawFile("{\"ids\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 8);
        assertFails(() -> open(dir), "model.safetensors", "tensor ids", "dtype I64", "supported: F32, F16, BF16");
    }

    @Test
    void duplicateTensorInOneHeader() throws IOException {
        rawFile("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                + " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4);
        assertFails(() -> open(dir), "model.safetensors", "not valid JSON", "Duplicate field 'w'");
    }

    @Test
    void missingShard() throws IOException {
        TinyCheckpoints.writeTinyRandom(dir, "Qwen3ForCausalLM", 1, "BF16", 6_000);
        String second;
        try (var files = Files.list(dir)) {
            second = files.map(f -> f.getFileName().toString()).filter(f -> f.startsWith("model-00002-of-"))
                    .findFirst().orElseThrow();
        }
        Files.delete(dir.resolve(second));
        assertFails(() -> open(dir), "model.safetensors.index.json", "lists shard " + second, "is missing");
    }

    @Test
    void tensorInTwoShards() throws IOException {
        float[] one = {1f};
        SafetensorsWriter.writeFile(dir.resolve("a.safetensors"), List.of(
                Tensor.of("x", new long[] {1}, one), Tensor.of("y", new long[] {1}, one)), Dtype.F32);
        SafetensorsWriter.writeFile(dir.resolve("b.safetensors"), List.of(
                Tensor.of("x", new long[] {1}, one), Tensor.of("z", new long[] {1}, one)), Dtype.F32);
        Files.writeString(dir.resolve("model.safetensors.index.json"), """
                {"metadata": {"total_size": 16},
                 "weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}}
                """);
        assertFails(() -> open(dir), "tensor x is in two shards", "a.safetensors", "b.safetensors");
    }

    @Test
    void indexNamingATensorItsShardLacks() throws IOException {
        SafetensorsWriter.writeFile(dir.resolve("a.safetensors"),
                List.of(Tensor.of("x", new long[] {1}, new float[] {1f})), Dtype.F32);
        Files.writeString(dir.resolve("model.safetensors.index.json"), """
                {"weight_map": {"x": "a.safetensors", "w": "a.safetensors"}}
                """);
        assertFails(() -> open(dir), "places w in", "a.safetensors", "no such tensor");
    }

    @Test
    void directoryWithoutCheckpoint() {
        assertFails(() -> open(dir), "neither model.safetensors nor model.safetensors.index.json");
    }

    @Test
    void weightShapeThatContradictsConfig() throws IOException {
        TinyCheckpoints.writeTinyRandom(dir, "LlamaForCausalLM", 1, "F32", SafetensorsWriter.NO_SHARDING);
        Path config = dir.resolve("config.json");
        ObjectNode json = (ObjectNode) new ObjectMapper().readTree(config.toFile());
        json.put("vocab_size", 100);
        Files.writeString(config, json.toString());
        ModelConfig c = HfConfigs.read(dir);
        try (SafetensorsSource s = SafetensorsSource.open(dir)) {
            assertFails(() -> WeightCheck.checkShapes(c, s),
                    "model.embed_tokens.weight", "has shape [64, 32]", "config.json implies [100, 32]");
        }
    }

    /** A config.json without per-layer lists describes layers that are all alike: weights that disagree are refused. */
    @ParameterizedTest
    @CsvSource({
        "num_attention_heads, 8, 4, 'model.layers.0.self_attn.q_proj.weight [32, 32]'",
        "num_key_value_heads, 4, 2, 'model.layers.0.self_attn.k_proj.weight [16, 32]'",
        "intermediate_size, 96, 48, 'model.layers.0.mlp.gate_proj.weight [48, 32]'"})
    void widthsThatContradictTheWeightsAreRefused(String key, int declared, int inWeights, String tensor) throws IOException {
        TinyCheckpoints.writeTinyRandom(dir, "LlamaForCausalLM", 1, "F32", SafetensorsWriter.NO_SHARDING);
        Path config = dir.resolve("config.json");
        ObjectNode json = (ObjectNode) new ObjectMapper().readTree(config.toFile());
        json.put(key, declared); // more than the weights have: within what checkShapes allows a pruned layer
        Files.writeString(config, json.toString());
        assertFails(() -> Checkpoint.open(dir).close(),
                "config.json's " + key + " is " + declared + " but the weights have " + inWeights + " (" + tensor + ")");
    }

    @Test
    void missingWeight() {
        ModelConfig c = TinyCheckpoints.tinyConfig("LlamaForCausalLM");
        List<Tensor> tensors = new ArrayList<>(TinyCheckpoints.randomTensors(c, 1));
        tensors.removeIf(t -> t.name().equals("lm_head.weight"));
        SafetensorsWriter.write(dir, tensors, Dtype.F32);
        try (SafetensorsSource s = SafetensorsSource.open(dir)) {
            assertFails(() -> WeightCheck.checkShapes(c, s), "no tensor lm_head.weight", "[64, 32]");
        }
    }

    @Test
    void qwen2WithoutBiasesFailsTheShapeCheck() {
        ModelConfig qwen2 = TinyCheckpoints.tinyConfig("Qwen2ForCausalLM");
        SafetensorsWriter.write(dir, TinyCheckpoints.randomTensors(TinyCheckpoints.tinyConfig("LlamaForCausalLM"), 1),
                Dtype.F32);
        try (SafetensorsSource s = SafetensorsSource.open(dir)) {
            assertFails(() -> WeightCheck.checkShapes(qwen2, s), "no tensor model.layers.0.self_attn.q_proj.bias");
        }
    }

    /** Layers narrowed by structured pruning (whole heads, MLP channels) pass; inconsistent ones do not. */
    @Test
    void prunedLayerWidthsMustBeConsistent() {
        ModelConfig c = TinyCheckpoints.tinyConfig("LlamaForCausalLM"); // 4 query heads, 2 kv heads, head_dim 8
        List<Tensor> pruned = narrowLayer0(c, 16, 24, 16);
        SafetensorsWriter.write(dir, pruned, Dtype.F32);
        try (SafetensorsSource s = SafetensorsSource.open(dir)) {
            WeightCheck.checkShapes(c, s);
        }

        // o_proj still has the unpruned width.
        List<Tensor> oMismatch = narrowLayer0(c, 16, 24, 16);
        replace(oMismatch, "model.layers.0.self_attn.o_proj.weight", 32, 32);
        SafetensorsWriter.write(dir, oMismatch, Dtype.F32);
        try (SafetensorsSource s = SafetensorsSource.open(dir)) {
            assertFails(() -> WeightCheck.checkShapes(c, s), "model.layers.0.self_attn.o_proj.weight",
                    "has shape [32, 32]", "implies [32, 16]", "q_proj has 16 rows");
        }

        // Three query heads cannot be shared evenly by two key/value heads.
        SafetensorsWriter.write(dir, narrowLayer0(c, 24, 24, 16), Dtype.F32);
        try (SafetensorsSource s = SafetensorsSource.open(dir)) {
            assertFails(() -> WeightCheck.checkShapes(c, s), "layer 0 has 3 query heads", "2 key/value heads");
        }

        // Half a head.
        SafetensorsWriter.write(dir, narrowLayer0(c, 12, 24, 16), Dtype.F32);
        try (SafetensorsSource s = SafetensorsSource.open(dir)) {
            assertFails(() -> WeightCheck.checkShapes(c, s), "q_proj.weight has shape [12, 32]",
                    "implies [32, 32] (or fewer whole heads of 8 rows)");
        }
    }

    /** The tiny model with layer 0 narrowed to {@code qRows} query rows, {@code mlpRows} MLP channels, kv rows kept. */
    private static List<Tensor> narrowLayer0(ModelConfig c, int qRows, int mlpRows, int kvRows) {
        List<Tensor> tensors = new ArrayList<>(TinyCheckpoints.randomTensors(c, 1));
        String p = "model.layers.0.";
        replace(tensors, p + "self_attn.q_proj.weight", qRows, 32);
        replace(tensors, p + "self_attn.k_proj.weight", kvRows, 32);
        replace(tensors, p + "self_attn.v_proj.weight", kvRows, 32);
        replace(tensors, p + "self_attn.o_proj.weight", 32, qRows);
        replace(tensors, p + "mlp.gate_proj.weight", mlpRows, 32);
        replace(tensors, p + "mlp.up_proj.weight", mlpRows, 32);
        replace(tensors, p + "mlp.down_proj.weight", 32, mlpRows);
        return tensors;
    }

    private static void replace(List<Tensor> tensors, String name, int rows, int cols) {
        tensors.replaceAll(t -> t.name().equals(name)
                ? Tensor.of(name, new long[] {rows, cols}, new float[rows * cols]) : t);
    }

    @Test
    void unsupportedArchitecture() throws IOException {
        Files.writeString(dir.resolve("config.json"), """
                {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 768, "n_layer": 12}
                """);
        assertFails(() -> HfConfigs.read(dir), "unsupported architecture GPT2LMHeadModel", "supported: LlamaForCausalLM");
    }
}
