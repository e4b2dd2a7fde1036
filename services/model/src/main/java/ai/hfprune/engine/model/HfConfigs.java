package ai.hfprune.engine.model;

import ai.hfprune.engine.HfpruneException;
import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * Reads and writes Hugging Face {@code config.json} for the decoder architectures hfprune supports.
 * Only settings the forward pass implements are accepted; anything that would make it silently compute
 * a different function (biases on o_proj or the MLP, another activation, a RoPE scaling it does not implement) is
 * rejected. RoPE scaling and sliding windows are read and written by {@link HfPositionConfigs}.
 */
public final class HfConfigs {
    private HfConfigs() {
    }

    public static final String CONFIG_FILE = "config.json";

    private static final JsonMapper JSON = new JsonMapper();

    /** Architecture → model_type. */
    private static final Map<String, String> MODEL_TYPES = Map.of(
            "LlamaForCausalLM", "llama",
            "MistralForCausalLM", "mistral",
            "Qwen2ForCausalLM", "qwen2",
            "Qwen3ForCausalLM", "qwen3");
    private static final String SUPPORTED = "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM";

    /** transformers' default max_position_embeddings per architecture, for configs that omit it. */
    private static final Map<String, Integer> DEFAULT_MAX_POSITIONS = Map.of(
            "LlamaForCausalLM", 2048,
            "MistralForCausalLM", 4096 * 32,
            "Qwen2ForCausalLM", 32768,
            "Qwen3ForCausalLM", 32768);

    /**
     * Per-layer widths of a non-uniformly pruned model (hfprune's extension; see {@link #write(ModelConfig, LayerWidths, Path)}).
     * Standard transformers ignores these keys and cannot load such a checkpoint.
     */
    public static final String INTERMEDIATE_SIZES = "intermediate_sizes";
    public static final String ATTENTION_HEADS_PER_LAYER = "num_attention_heads_per_layer";
    public static final String KEY_VALUE_HEADS_PER_LAYER = "num_key_value_heads_per_layer";

    /** Reads {@code modelDir/config.json}. */
    public static ModelConfig read(Path modelDir) {
        Path file = modelDir.resolve(CONFIG_FILE);
        return parse(readTree(file), file.toString());
    }

    /**
     * The per-layer widths {@code modelDir/config.json} declares, if it has the per-layer lists; empty for a standard
     * config (whose scalar fields then bound, but need not equal, each layer's width).
     */
    public static Optional<LayerWidths> readLayerWidths(Path modelDir) {
        Path file = modelDir.resolve(CONFIG_FILE);
        JsonNode root = readTree(file);
        return Optional.ofNullable(layerWidths(root, parse(root, file.toString()), file.toString()));
    }

    private static JsonNode readTree(Path file) {
        Path modelDir = file.getParent();
        if (!Files.isRegularFile(file)) {
            throw new HfpruneException(modelDir + " has no " + CONFIG_FILE);
        }
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (JacksonException e) {
            throw new HfpruneException(file + " is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new HfpruneException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new HfpruneException(file + " is not a JSON object");
        }
        return root;
    }

    /** Parses a config.json tree (checking the per-layer lists, if any); {@code where} names it in error messages. */
    public static ModelConfig parse(JsonNode root, String where) {
        Fields f = new Fields(root, where);
        String arch = architecture(root, where);

        // Llama and Qwen3 put attention_bias on all four projections, o_proj included; Qwen2 always has q/k/v
        // biases and no o_proj bias; Mistral has none.
        boolean attentionBias;
        if (arch.equals("Qwen2ForCausalLM")) {
            attentionBias = true;
        } else {
            if (f.bool("attention_bias", false)) {
                throw new HfpruneException(where + ": attention_bias=true puts a bias on o_proj, which hfprune does not"
                        + " support for " + arch);
            }
            attentionBias = false;
        }
        if (f.bool("mlp_bias", false)) {
            throw new HfpruneException(where + ": mlp_bias=true is not supported");
        }
        String act = root.path("hidden_act").asText("silu");
        if (!act.equals("silu")) {
            throw new HfpruneException(where + ": hidden_act " + act + " is not supported (only silu)");
        }
        RopeScaling ropeScaling = HfPositionConfigs.ropeScaling(root, where);

        int hidden = f.requiredInt("hidden_size");
        int heads = f.requiredInt("num_attention_heads");
        if (hidden % heads != 0 && f.optionalInt("head_dim") == null) {
            throw new HfpruneException(where + ": hidden_size " + hidden + " is not a multiple of num_attention_heads "
                    + heads + " and there is no head_dim");
        }
        Integer headDim = f.optionalInt("head_dim");
        // transformers 5 moves rope_theta into rope_parameters.
        Double ropeTheta = f.optionalDouble(root, "rope_theta");
        if (ropeTheta == null && root.path("rope_parameters").isObject()) {
            ropeTheta = f.optionalDouble(root.get("rope_parameters"), "rope_theta");
        }
        Integer maxPos = f.optionalInt("max_position_embeddings");
        int layers = f.requiredInt("num_hidden_layers");
        SlidingWindow window = HfPositionConfigs.slidingWindow(root, arch, layers, where);
        ModelConfig config;
        try {
            config = new ModelConfig(
                    arch,
                    f.requiredInt("vocab_size"),
                    hidden,
                    f.requiredInt("intermediate_size"),
                    layers,
                    heads,
                    orElse(f.optionalInt("num_key_value_heads"), heads),
                    orElse(headDim, hidden / heads),
                    orElse(f.optionalDouble(root, "rms_norm_eps"), 1e-6),
                    orElse(ropeTheta, 10000.0),
                    orElse(maxPos, DEFAULT_MAX_POSITIONS.get(arch)),
                    f.bool("tie_word_embeddings", false),
                    attentionBias,
                    arch.equals("Qwen3ForCausalLM"),
                    RopeStyle.HALF,
                    f.tokenId("bos_token_id"),
                    f.tokenId("eos_token_id"),
                    ropeScaling,
                    window);
        } catch (IllegalArgumentException e) {
            throw new HfpruneException(where + ": " + e.getMessage());
        }
        layerWidths(root, config, where); // a malformed list is an error even for callers that do not use it
        return config;
    }

    /** Why a model whose RoPE scaling came from GGUF's rope_freqs tensor cannot be saved as config.json. */
    public static String noRopeScalingForm() {
        return HfPositionConfigs.noConfigForm();
    }

    /** The per-layer lists, checked against the scalar fields; null when config.json has none of them. */
    private static LayerWidths layerWidths(JsonNode root, ModelConfig c, String where) {
        String[] keys = {INTERMEDIATE_SIZES, ATTENTION_HEADS_PER_LAYER, KEY_VALUE_HEADS_PER_LAYER};
        int present = 0;
        for (String key : keys) {
            present += root.hasNonNull(key) ? 1 : 0;
        }
        if (present == 0) {
            return null;
        }
        if (present < keys.length) {
            throw new HfpruneException(where + ": per-layer widths need all of " + String.join(", ", keys)
                    + ", not only some of them");
        }
        Fields f = new Fields(root, where);
        int[] mlp = f.positiveInts(INTERMEDIATE_SIZES, c.numHiddenLayers(), "intermediate_size", c.intermediateSize());
        int[] heads = f.positiveInts(ATTENTION_HEADS_PER_LAYER, c.numHiddenLayers(), "num_attention_heads", c.numAttentionHeads());
        int[] kv = f.positiveInts(KEY_VALUE_HEADS_PER_LAYER, c.numHiddenLayers(), "num_key_value_heads", c.numKeyValueHeads());
        for (int l = 0; l < kv.length; l++) {
            if (heads[l] % kv[l] != 0) {
                throw new HfpruneException(where + ": layer " + l + " has " + heads[l] + " attention heads for " + kv[l]
                        + " key/value heads; " + ATTENTION_HEADS_PER_LAYER + " must be multiples of " + KEY_VALUE_HEADS_PER_LAYER);
            }
        }
        return new LayerWidths(mlp, heads, kv);
    }

    private static String architecture(JsonNode root, String where) {
        JsonNode archs = root.get("architectures");
        if (archs == null || !archs.isArray() || archs.isEmpty() || !archs.get(0).isTextual()) {
            throw new HfpruneException(where + ": unsupported architecture (config.json names none in \"architectures\")"
                    + " (supported: " + SUPPORTED + ")");
        }
        String arch = archs.get(0).asText();
        if (!MODEL_TYPES.containsKey(arch)) {
            throw new HfpruneException(where + ": unsupported architecture " + arch + " (supported: " + SUPPORTED + ")");
        }
        return arch;
    }

    /**
     * Writes {@code modelDir/config.json} in the form transformers' {@code save_pretrained} produces, so that
     * {@code AutoModelForCausalLM.from_pretrained(modelDir)} loads the checkpoint and {@code read} gives back {@code c}.
     */
    public static void write(ModelConfig c, Path modelDir) {
        write(c, null, modelDir);
    }

    /**
     * Writes config.json for a model whose layers may differ in width. Uniform widths (or null) give a standard
     * config.json. Otherwise the scalar fields hold upper bounds and the lists {@value #INTERMEDIATE_SIZES},
     * {@value #ATTENTION_HEADS_PER_LAYER} and {@value #KEY_VALUE_HEADS_PER_LAYER} the exact widths: hfprune reads them,
     * but standard transformers (and llama.cpp's converter) build every layer at the scalar width and fail on the
     * narrower weights, so such a checkpoint needs a loader that knows these keys.
     */
    public static void write(ModelConfig c, LayerWidths widths, Path modelDir) {
        if (widths != null) {
            checkWidths(c, widths);
        }
        String modelType = MODEL_TYPES.get(c.architecture());
        if (modelType == null) {
            throw new IllegalArgumentException("unsupported architecture " + c.architecture() + " (supported: " + SUPPORTED + ")");
        }
        boolean qwen2 = c.architecture().equals("Qwen2ForCausalLM");
        boolean qwen3 = c.architecture().equals("Qwen3ForCausalLM");
        // Each of these is fixed by the architecture in transformers; a config that differs cannot be saved faithfully.
        if (c.attentionBias() != qwen2) {
            throw new IllegalArgumentException(c.architecture() + " cannot be saved with attentionBias=" + c.attentionBias());
        }
        if (c.qkNorm() != qwen3) {
            throw new IllegalArgumentException(c.architecture() + " cannot be saved with qkNorm=" + c.qkNorm());
        }
        if (c.ropeStyle() != RopeStyle.HALF) {
            throw new IllegalArgumentException("Hugging Face checkpoints use rotate_half RoPE; un-permute q/k and use "
                    + "RopeStyle.HALF before saving");
        }

        ObjectNode o = JSON.createObjectNode();
        o.putArray("architectures").add(c.architecture());
        o.put("model_type", modelType);
        o.put("vocab_size", c.vocabSize());
        o.put("hidden_size", c.hiddenSize());
        o.put("intermediate_size", c.intermediateSize());
        o.put("num_hidden_layers", c.numHiddenLayers());
        o.put("num_attention_heads", c.numAttentionHeads());
        o.put("num_key_value_heads", c.numKeyValueHeads());
        if (widths != null && !widths.isUniform()) {
            putInts(o, INTERMEDIATE_SIZES, widths.intermediateSizes());
            putInts(o, ATTENTION_HEADS_PER_LAYER, widths.numAttentionHeads());
            putInts(o, KEY_VALUE_HEADS_PER_LAYER, widths.numKeyValueHeads());
        }
        o.put("head_dim", c.headDim());
        o.put("hidden_act", "silu");
        o.put("rms_norm_eps", c.rmsNormEps());
        o.put("rope_theta", c.ropeTheta());
        HfPositionConfigs.writeRopeScaling(o, c.ropeScaling());
        o.put("max_position_embeddings", c.maxPositionEmbeddings());
        o.put("tie_word_embeddings", c.tieWordEmbeddings());
        if (!qwen2) {
            o.put("attention_bias", false); // Qwen2's q/k/v biases are built in, not configured
        }
        if (modelType.equals("llama")) {
            o.put("mlp_bias", false);
            o.put("pretraining_tp", 1);
        }
        HfPositionConfigs.writeSlidingWindow(o, c, modelType);
        o.put("attention_dropout", 0.0);
        o.put("initializer_range", 0.02);
        o.put("use_cache", true);
        putTokenId(o, "bos_token_id", c.bosTokenId());
        putTokenId(o, "eos_token_id", c.eosTokenId());
        o.put("torch_dtype", "float32");
        try {
            Files.createDirectories(modelDir);
            Files.writeString(modelDir.resolve(CONFIG_FILE),
                    JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n", StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new HfpruneException("cannot write " + modelDir.resolve(CONFIG_FILE) + ": " + e.getMessage(), e);
        }
    }

    /** Per-layer widths must fit under the config's scalar fields, and equal them when all layers are alike. */
    private static void checkWidths(ModelConfig c, LayerWidths w) {
        if (w.numLayers() != c.numHiddenLayers()) {
            throw new IllegalArgumentException(w.numLayers() + " per-layer widths for " + c.numHiddenLayers() + " layers");
        }
        boolean fits = w.maxIntermediateSize() <= c.intermediateSize() && w.maxAttentionHeads() <= c.numAttentionHeads()
                && w.maxKeyValueHeads() <= c.numKeyValueHeads();
        boolean exactIfUniform = !w.isUniform() || (w.intermediateSize(0) == c.intermediateSize()
                && w.numAttentionHeads(0) == c.numAttentionHeads() && w.numKeyValueHeads(0) == c.numKeyValueHeads());
        if (!fits || !exactIfUniform) {
            throw new IllegalArgumentException(w + " do not agree with the config " + c);
        }
    }

    private static void putInts(ObjectNode o, String key, int[] values) {
        var array = o.putArray(key);
        for (int v : values) {
            array.add(v);
        }
    }

    /** Token ids are -1 in {@link ModelConfig} when config.json has none (null). */
    private static void putTokenId(ObjectNode o, String key, int id) {
        if (id < 0) {
            o.putNull(key);
        } else {
            o.put(key, id);
        }
    }

    private static <T> T orElse(T value, T fallback) {
        return value != null ? value : fallback;
    }

    /** Typed access to config.json fields with messages naming the file and the key. */
    private record Fields(JsonNode root, String where) {

        int requiredInt(String key) {
            Integer v = optionalInt(key);
            if (v == null) {
                throw new HfpruneException(where + " lacks " + key);
            }
            return v;
        }

        /** Absent and null both mean "use the default" (transformers writes e.g. "head_dim": null). */
        Integer optionalInt(String key) {
            JsonNode v = root.get(key);
            if (v == null || v.isNull()) {
                return null;
            }
            if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() <= 0) {
                throw new HfpruneException(where + ": " + key + " must be a positive integer, got " + v);
            }
            return v.asInt();
        }

        /** A list of {@code length} positive integers, none above {@code bound} (the value of {@code boundKey}). */
        int[] positiveInts(String key, int length, String boundKey, int bound) {
            JsonNode v = root.get(key);
            if (!v.isArray() || v.size() != length) {
                throw new HfpruneException(where + ": " + key + " must be a list of " + length
                        + " integers (one per layer), got " + v);
            }
            int[] out = new int[length];
            for (int i = 0; i < length; i++) {
                JsonNode e = v.get(i);
                if (!e.isIntegralNumber() || !e.canConvertToInt() || e.asInt() <= 0 || e.asInt() > bound) {
                    throw new HfpruneException(where + ": " + key + "[" + i + "] must be an integer in [1, " + bound
                            + "] (" + boundKey + "), got " + e);
                }
                out[i] = e.asInt();
            }
            return out;
        }

        Double optionalDouble(JsonNode node, String key) {
            JsonNode v = node.get(key);
            if (v == null || v.isNull()) {
                return null;
            }
            if (!v.isNumber() || v.asDouble() <= 0) {
                throw new HfpruneException(where + ": " + key + " must be a positive number, got " + v);
            }
            return v.asDouble();
        }

        boolean bool(String key, boolean fallback) {
            JsonNode v = root.get(key);
            if (v == null || v.isNull()) {
                return fallback;
            }
            if (!v.isBoolean()) {
                throw new HfpruneException(where + ": " + key + " must be true or false, got " + v);
            }
            return v.asBoolean();
        }

        /** A token id, or the first of a list (Llama 3 lists several eos ids); -1 when absent. */
        int tokenId(String key) {
            JsonNode v = root.get(key);
            if (v != null && v.isArray()) {
                v = v.isEmpty() ? null : v.get(0);
            }
            if (v == null || v.isNull()) {
                return -1;
            }
            if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < 0) {
                throw new HfpruneException(where + ": " + key + " must be a token id, got " + v);
            }
            return v.asInt();
        }
    }
}
