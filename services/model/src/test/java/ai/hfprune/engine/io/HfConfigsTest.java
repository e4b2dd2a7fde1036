package ai.hfprune.engine.io;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.model.HfConfigs;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.WeightCheck;
import ai.hfprune.engine.model.RopeScaling;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.model.SlidingWindow;
import ai.hfprune.engine.testing.TinyCheckpoints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HfConfigsTest {

    @TempDir
    Path dir;

    private ModelConfig readJson(String json) throws IOException {
        Files.writeString(dir.resolve("config.json"), json);
        return HfConfigs.read(dir);
    }

    @ParameterizedTest
    @ValueSource(strings = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"})
    void writeThenReadGivesTheSameConfig(String arch) throws IOException {
        ModelConfig c = TinyCheckpoints.tinyConfig(arch);
        HfConfigs.write(c, dir);
        assertEquals(c, HfConfigs.read(dir));

        JsonNode json = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        assertEquals(arch, json.get("architectures").get(0).asText());
        assertEquals(arch.replace("ForCausalLM", "").toLowerCase(), json.get("model_type").asText());
        assertEquals("float32", json.get("torch_dtype").asText());
        assertEquals("silu", json.get("hidden_act").asText());
    }

    @Test
    void roundTripKeepsUnusualValues() {
        ModelConfig c = new ModelConfig("LlamaForCausalLM", 32000, 4096, 11008, 32, 32, 32, 128, 1e-5, 500000.0,
                4096, true, false, false, RopeStyle.HALF, -1, 0);
        HfConfigs.write(c, dir);
        assertEquals(c, HfConfigs.read(dir));
    }

    @Test
    void readsLlama32WithEosListAndExplicitHeadDim() throws IOException {
        ModelConfig c = readJson("""
                {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
                 "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 64,
                 "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
                 "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
                 "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
                 "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0,
                 "low_freq_factor": 1.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                 "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
                 "use_cache": true, "vocab_size": 128256}
                """);
        assertEquals(new ModelConfig("LlamaForCausalLM", 128256, 2048, 8192, 16, 32, 8, 64, 1e-5, 500000.0, 131072,
                true, false, false, RopeStyle.HALF, 128000, 128001, new RopeScaling.Llama3(32, 1, 4, 8192),
                SlidingWindow.NONE), c);
    }

    @Test
    void readsQwen25WithImplicitBiasesAndHeadDim() throws IOException {
        ModelConfig c = readJson("""
                {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
                 "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
                 "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 24,
                 "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
                 "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
                 "torch_dtype": "bfloat16", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}
                """);
        assertEquals(new ModelConfig("Qwen2ForCausalLM", 151936, 896, 4864, 24, 14, 2, 64, 1e-6, 1e6, 32768,
                true, true, false, RopeStyle.HALF, 151643, 151643), c);
        assertEquals(SlidingWindow.NONE, c.slidingWindow(), "use_sliding_window false: sliding_window 32768 unused");
    }

    @Test
    void readsQwen3WhoseHeadDimDiffersFromHiddenOverHeads() throws IOException {
        ModelConfig c = readJson("""
                {"architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
                 "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
                 "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
                 "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
                 "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
                 "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": true,
                 "torch_dtype": "bfloat16", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}
                """);
        assertEquals(new ModelConfig("Qwen3ForCausalLM", 151936, 1024, 3072, 28, 16, 8, 128, 1e-6, 1e6, 40960,
                true, false, true, RopeStyle.HALF, 151643, 151645), c);
    }

    @Test
    void readsMistralAndAppliesDefaults() throws IOException {
        ModelConfig c = readJson("""
                {"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
                 "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 32768,
                 "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
                 "rope_theta": 10000.0, "sliding_window": 4096, "vocab_size": 32000}
                """);
        assertEquals(new ModelConfig("MistralForCausalLM", 32000, 4096, 14336, 32, 32, 8, 128, 1e-5, 10000.0, 32768,
                false, false, false, RopeStyle.HALF, 1, 2, RopeScaling.NONE, SlidingWindow.fromLayer(4096, 0, 32)), c);
        assertEquals(32, c.slidingWindow().layers().size(), "Mistral's window holds in every layer");

        // No num_key_value_heads, head_dim, rope_theta, tie_word_embeddings or token ids: transformers' defaults.
        ModelConfig d = readJson("""
                {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
                 "num_attention_heads": 4, "num_hidden_layers": 2, "rms_norm_eps": 1e-05, "vocab_size": 100,
                 "max_position_embeddings": 256, "head_dim": null}
                """);
        assertEquals(new ModelConfig("LlamaForCausalLM", 100, 64, 128, 2, 4, 4, 16, 1e-5, 10000.0, 256,
                false, false, false, RopeStyle.HALF, -1, -1), d);
    }

    @Test
    void readsRopeThetaFromTransformers5RopeParameters() throws IOException {
        ModelConfig c = readJson("""
                {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
                 "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 100, "max_position_embeddings": 256,
                 "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}}
                """);
        assertEquals(500000.0, c.ropeTheta());
        assertEquals(RopeScaling.NONE, c.ropeScaling());

        ModelConfig scaled = readJson(TINY_LLAMA.formatted("\"rope_parameters\": {\"rope_theta\": 500000.0,"
                + " \"rope_type\": \"linear\", \"factor\": 4.0}"));
        assertEquals(new RopeScaling.Linear(4), scaled.ropeScaling());
    }

    private static final String TINY_LLAMA = """
            {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
             "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 100, "max_position_embeddings": 256, %s}
            """;

    @Test
    void readsRopeScalingUnderBothKeySpellings() throws IOException {
        assertEquals(new RopeScaling.Linear(2), readJson(TINY_LLAMA.formatted(
                "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}")).ropeScaling());
        assertEquals(new RopeScaling.Linear(2), readJson(TINY_LLAMA.formatted(
                "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2.0}")).ropeScaling());
        assertEquals(new RopeScaling.Llama3(8, 1, 4, 64), readJson(TINY_LLAMA.formatted(
                "\"rope_scaling\": {\"type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1,"
                        + " \"high_freq_factor\": 4, \"original_max_position_embeddings\": 64}")).ropeScaling());
        assertEquals(RopeScaling.NONE, readJson(TINY_LLAMA.formatted(
                "\"rope_scaling\": {\"rope_type\": \"default\"}")).ropeScaling());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "{\"rope_type\": \"yarn\", \"factor\": 4.0}                             | type 'yarn' is not supported",
        "{\"rope_type\": \"dynamic\", \"factor\": 2.0}                          | type 'dynamic' is not supported",
        "{\"type\": \"su\", \"factor\": 2.0}                                    | type 'su' is not supported",
        "{\"factor\": 2.0}                                                        | names no rope_type",
        "{\"rope_type\": \"linear\"}                                              | lacks factor",
        "{\"rope_type\": \"linear\", \"factor\": -2}                             | factor must be a positive number",
        "{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, \"high_freq_factor\": 4} | lacks original_max_position_embeddings",
        "{\"rope_type\": \"llama3\", \"factor\": 0, \"low_freq_factor\": 1, \"high_freq_factor\": 4, \"original_max_position_embeddings\": 64} | factor must be a positive number",
        "{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4, \"high_freq_factor\": 4, \"original_max_position_embeddings\": 64} | low_freq_factor < high_freq_factor",
        "{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, \"high_freq_factor\": 4, \"original_max_position_embeddings\": 6.5} | original_max_position_embeddings must be a positive integer",
        "\"llama3\"                                                                | must be an object or null"})
    void ropeScalingItCannotComputeIsRefusedWithItsReason(String ropeScaling, String reason) {
        HfpruneException e = assertThrows(HfpruneException.class,
                () -> readJson(TINY_LLAMA.formatted("\"rope_scaling\": " + ropeScaling)));
        assertTrue(e.getMessage().contains("config.json: rope_scaling"), e.getMessage());
        assertTrue(e.getMessage().contains(reason.strip()), e.getMessage());
    }

    @Test
    void qwenSlidingWindowFollowsUseSlidingWindowAndMaxWindowLayers() throws IOException {
        String qwen = """
                {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
                 "num_attention_heads": 4, "num_hidden_layers": 4, "vocab_size": 100, %s}
                """;
        assertEquals(new SlidingWindow(16, List.of(1, 2, 3)), readJson(qwen.formatted(
                "\"use_sliding_window\": true, \"sliding_window\": 16, \"max_window_layers\": 1")).slidingWindow());
        assertEquals(SlidingWindow.NONE, readJson(qwen.formatted(
                "\"use_sliding_window\": true, \"sliding_window\": 16, \"max_window_layers\": 4")).slidingWindow());
        assertEquals(SlidingWindow.NONE, readJson(qwen.formatted(
                "\"use_sliding_window\": false, \"sliding_window\": 16, \"max_window_layers\": 0")).slidingWindow());
        assertEquals(new SlidingWindow(16, List.of(0, 2)), readJson(qwen.formatted(
                "\"use_sliding_window\": true, \"sliding_window\": 16, \"max_window_layers\": 3, \"layer_types\":"
                        + " [\"sliding_attention\", \"full_attention\", \"sliding_attention\", \"full_attention\"]"))
                .slidingWindow(), "layer_types, when given, decide as in transformers");
    }

    @ParameterizedTest
    @ValueSource(strings = {"linear", "llama3"})
    void ropeScalingAndWindowRoundTrip(String type) {
        ModelConfig tiny = TinyCheckpoints.tinyConfig("MistralForCausalLM");
        RopeScaling scaling = type.equals("linear") ? new RopeScaling.Linear(3) : new RopeScaling.Llama3(8, 1, 4, 32);
        ModelConfig c = new ModelConfig(tiny.architecture(), tiny.vocabSize(), tiny.hiddenSize(), tiny.intermediateSize(),
                tiny.numHiddenLayers(), tiny.numAttentionHeads(), tiny.numKeyValueHeads(), tiny.headDim(),
                tiny.rmsNormEps(), tiny.ropeTheta(), tiny.maxPositionEmbeddings(), tiny.tieWordEmbeddings(),
                tiny.attentionBias(), tiny.qkNorm(), tiny.ropeStyle(), tiny.bosTokenId(), tiny.eosTokenId(), scaling,
                SlidingWindow.fromLayer(24, 0, tiny.numHiddenLayers()));
        HfConfigs.write(c, dir);
        assertEquals(c, HfConfigs.read(dir));

        ModelConfig qwen = TinyCheckpoints.tinyConfig("Qwen3ForCausalLM");
        for (SlidingWindow w : List.of(SlidingWindow.fromLayer(24, 1, 2), new SlidingWindow(24, List.of(0)))) {
            ModelConfig q = new ModelConfig(qwen.architecture(), qwen.vocabSize(), qwen.hiddenSize(),
                    qwen.intermediateSize(), qwen.numHiddenLayers(), qwen.numAttentionHeads(), qwen.numKeyValueHeads(),
                    qwen.headDim(), qwen.rmsNormEps(), qwen.ropeTheta(), qwen.maxPositionEmbeddings(),
                    qwen.tieWordEmbeddings(), qwen.attentionBias(), qwen.qkNorm(), qwen.ropeStyle(), qwen.bosTokenId(),
                    qwen.eosTokenId(), scaling, w);
            HfConfigs.write(q, dir);
            assertEquals(q, HfConfigs.read(dir));
        }
    }

    @Test
    void unsupportedArchitectureIsNamed() throws IOException {
        HfpruneException e = assertThrows(HfpruneException.class, () -> readJson("""
                {"architectures": ["GPT2LMHeadModel"], "n_embd": 768, "vocab_size": 50257}
                """));
        assertTrue(e.getMessage().contains("unsupported architecture GPT2LMHeadModel"), e.getMessage());
        assertTrue(e.getMessage().contains("LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM"),
                e.getMessage());
    }

    @Test
    void missingArchitecturesIsUnsupported() {
        HfpruneException e = assertThrows(HfpruneException.class, () -> readJson("""
                {"hidden_size": 64, "vocab_size": 100}
                """));
        assertTrue(e.getMessage().contains("unsupported architecture"), e.getMessage());
        assertTrue(e.getMessage().contains("architectures"), e.getMessage());
    }

    @Test
    void settingsTheForwardPassLacksAreRejected() {
        String base = """
                {"architectures": ["%s"], "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
                 "num_hidden_layers": 2, "vocab_size": 100, %s}
                """;
        HfpruneException bias = assertThrows(HfpruneException.class,
                () -> readJson(base.formatted("Qwen3ForCausalLM", "\"attention_bias\": true")));
        assertTrue(bias.getMessage().contains("attention_bias"), bias.getMessage());
        HfpruneException act = assertThrows(HfpruneException.class,
                () -> readJson(base.formatted("LlamaForCausalLM", "\"hidden_act\": \"gelu\"")));
        assertTrue(act.getMessage().contains("gelu"), act.getMessage());
        HfpruneException missing = assertThrows(HfpruneException.class,
                () -> readJson(base.formatted("LlamaForCausalLM", "\"rms_norm_eps\": 1e-5").replace("\"vocab_size\": 100, ", "")));
        assertTrue(missing.getMessage().contains("lacks vocab_size"), missing.getMessage());
        HfpruneException gqa = assertThrows(HfpruneException.class,
                () -> readJson(base.formatted("LlamaForCausalLM", "\"num_key_value_heads\": 3")));
        assertTrue(gqa.getMessage().contains("config.json"), gqa.getMessage());
        assertFalse(gqa.getMessage().isBlank());
    }

    @Test
    void perLayerWidthsRoundTrip() throws IOException {
        ModelConfig c = TinyCheckpoints.tinyConfig("Qwen2ForCausalLM"); // 2 layers, 48 neurons, 4 heads over 2 KV heads
        LayerWidths widths = new LayerWidths(new int[] {48, 20}, new int[] {4, 2}, new int[] {2, 1});
        HfConfigs.write(c, widths, dir);
        assertEquals(c, HfConfigs.read(dir));
        assertEquals(widths, HfConfigs.readLayerWidths(dir).orElseThrow());
        JsonNode json = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        assertEquals("[48,20]", json.get("intermediate_sizes").toString());
        assertEquals("[4,2]", json.get("num_attention_heads_per_layer").toString());
        assertEquals("[2,1]", json.get("num_key_value_heads_per_layer").toString());

        // uniform widths (or none) keep config.json standard
        HfConfigs.write(c, LayerWidths.uniform(c), dir);
        assertTrue(HfConfigs.readLayerWidths(dir).isEmpty());
        assertFalse(Files.readString(dir.resolve("config.json")).contains("intermediate_sizes"));
        assertThrows(IllegalArgumentException.class,
                () -> HfConfigs.write(c, new LayerWidths(new int[] {49, 20}, new int[] {4, 2}, new int[] {2, 1}), dir),
                "wider than the config");
    }

    @Test
    void malformedPerLayerWidthsAreRejected() {
        String base = """
                {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 100, %s}
                """;
        String heads = "\"num_attention_heads_per_layer\": [4, 2], \"num_key_value_heads_per_layer\": [2, 1]";
        HfpruneException partial = assertThrows(HfpruneException.class,
                () -> readJson(base.formatted("\"intermediate_sizes\": [128, 64]")));
        assertTrue(partial.getMessage().contains("need all of intermediate_sizes"), partial.getMessage());
        HfpruneException length = assertThrows(HfpruneException.class,
                () -> readJson(base.formatted("\"intermediate_sizes\": [128], " + heads)));
        assertTrue(length.getMessage().contains("intermediate_sizes must be a list of 2 integers"), length.getMessage());
        HfpruneException wide = assertThrows(HfpruneException.class,
                () -> readJson(base.formatted("\"intermediate_sizes\": [128, 200], " + heads)));
        assertTrue(wide.getMessage().contains("intermediate_sizes[1] must be an integer in [1, 128]"), wide.getMessage());
        HfpruneException gqa = assertThrows(HfpruneException.class, () -> readJson(base.formatted(
                "\"intermediate_sizes\": [128, 64], \"num_attention_heads_per_layer\": [4, 3], "
                        + "\"num_key_value_heads_per_layer\": [2, 2]")));
        assertTrue(gqa.getMessage().contains("layer 1 has 3 attention heads for 2 key/value heads"), gqa.getMessage());
    }

    @Test
    void declaredWidthsMustMatchTheWeights(@TempDir Path model) {
        ModelConfig c = TinyCheckpoints.writeTinyRandom(model, "LlamaForCausalLM", 3, "F32", SafetensorsWriter.NO_SHARDING);
        try (SafetensorsSource s = SafetensorsSource.open(model)) {
            assertEquals(LayerWidths.uniform(c), WeightCheck.layerWidths(c, s));
            WeightCheck.checkLayerWidths(c, LayerWidths.uniform(c), s);
            HfpruneException e = assertThrows(HfpruneException.class, () -> WeightCheck.checkLayerWidths(c,
                    new LayerWidths(new int[] {48, 40}, new int[] {4, 4}, new int[] {2, 2}), s));
            assertTrue(e.getMessage().contains("intermediate_sizes[1] is 40 but the weights have 48"), e.getMessage());
            assertTrue(e.getMessage().contains("model.layers.1.mlp.gate_proj.weight [48, 32]"), e.getMessage());
        }
    }

    @Test
    void missingConfigIsReported() {
        HfpruneException e = assertThrows(HfpruneException.class, () -> HfConfigs.read(dir));
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
    }
}
