package ai.hfprune.engine.model;

import ai.hfprune.engine.HfpruneException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.List;

/**
 * config.json's position settings: {@code rope_scaling} ({@link RopeScaling}) and the sliding attention window
 * ({@link SlidingWindow}), read and written as transformers does. A setting the forward pass cannot compute exactly is
 * refused with one message rather than ignored: a Llama 3.x checkpoint run with plain RoPE gives wrong logits.
 */
final class HfPositionConfigs {
    private HfPositionConfigs() {
    }

    private static final String APPLIED = "hfprune applies rope_type default, linear and llama3";

    /**
     * {@code rope_scaling}, or transformers 5's {@code rope_parameters} when there is none. The type is read from
     * {@code rope_type} or, in older configs, {@code type} (transformers' {@code rope_config_validation} accepts both).
     */
    static RopeScaling ropeScaling(JsonNode root, String where) {
        JsonNode node = root.get("rope_scaling");
        String key = "rope_scaling";
        if ((node == null || node.isNull()) && root.path("rope_parameters").isObject()) {
            node = root.get("rope_parameters");
            key = "rope_parameters";
        }
        if (node == null || node.isNull()) {
            return RopeScaling.NONE;
        }
        String at = where + ": " + key;
        if (!node.isObject()) {
            throw new HfpruneException(at + " must be an object or null, got " + node);
        }
        JsonNode type = node.hasNonNull("rope_type") ? node.get("rope_type") : node.get("type");
        if (type == null || !type.isTextual()) {
            throw new HfpruneException(at + " " + node + " names no rope_type");
        }
        // Why these formulas: transformers' modeling_rope_utils.py, _compute_linear_scaling_rope_parameters
        // (inv_freq /= factor) and _compute_llama3_parameters (see RopeScaling.Llama3), which hfprune reproduces.
        try {
            return switch (type.asText()) {
                case "default" -> RopeScaling.NONE;
                case "linear" -> new RopeScaling.Linear(number(node, "factor", at));
                case "llama3" -> new RopeScaling.Llama3(number(node, "factor", at), number(node, "low_freq_factor", at),
                        number(node, "high_freq_factor", at), positiveInt(node, "original_max_position_embeddings", at));
                case "dynamic" -> throw new HfpruneException(at + " type 'dynamic' is not supported: its frequencies"
                        + " change with the length of each sequence run, which hfprune's tables do not (" + APPLIED + ")");
                case "yarn", "longrope" -> throw new HfpruneException(at + " type '" + type.asText() + "' is not"
                        + " supported: it also scales cos/sin by an attention factor, which hfprune does not (" + APPLIED + ")");
                default -> throw new HfpruneException(at + " type '" + type.asText() + "' is not supported (" + APPLIED + ")");
            };
        } catch (IllegalArgumentException e) {
            throw new HfpruneException(at + " " + node + ": " + e.getMessage());
        }
    }

    /**
     * The attention window, as transformers builds it: Mistral's {@code sliding_window} holds for every layer;
     * Qwen2/Qwen3 use {@code sliding_window} only when {@code use_sliding_window} is true, in the layers that
     * {@code layer_types} marks {@code sliding_attention} or, without that list, those from {@code max_window_layers}
     * on (the configs' {@code i >= max_window_layers}). Llama has none.
     */
    static SlidingWindow slidingWindow(JsonNode root, String architecture, int numLayers, String where) {
        boolean qwen = architecture.startsWith("Qwen");
        if (!qwen && !architecture.equals("MistralForCausalLM")) {
            return SlidingWindow.NONE;
        }
        JsonNode use = root.get("use_sliding_window");
        if (qwen && (use == null || use.isNull() || !use.asBoolean(false))) {
            return SlidingWindow.NONE;
        }
        JsonNode size = root.get("sliding_window");
        if (size == null || size.isNull()) {
            return SlidingWindow.NONE;
        }
        if (!size.isIntegralNumber() || !size.canConvertToInt() || size.asInt() <= 0) {
            throw new HfpruneException(where + ": sliding_window must be a positive integer or null, got " + size);
        }
        if (!qwen) {
            return SlidingWindow.fromLayer(size.asInt(), 0, numLayers);
        }
        JsonNode types = root.get("layer_types");
        if (types != null && !types.isNull()) {
            return fromLayerTypes(types, size.asInt(), numLayers, where);
        }
        JsonNode from = root.get("max_window_layers");
        int first = 28; // Qwen2Config's and Qwen3Config's default
        if (from != null && !from.isNull()) {
            if (!from.isIntegralNumber() || !from.canConvertToInt() || from.asInt() < 0) {
                throw new HfpruneException(where + ": max_window_layers must be a non-negative integer, got " + from);
            }
            first = from.asInt();
        }
        return SlidingWindow.fromLayer(size.asInt(), first, numLayers);
    }

    private static SlidingWindow fromLayerTypes(JsonNode types, int size, int numLayers, String where) {
        if (!types.isArray() || types.size() != numLayers) {
            throw new HfpruneException(where + ": layer_types must list " + numLayers + " layers, got " + types);
        }
        List<Integer> sliding = new ArrayList<>();
        for (int l = 0; l < numLayers; l++) {
            String t = types.get(l).asText("");
            if (t.equals("sliding_attention")) {
                sliding.add(l);
            } else if (!t.equals("full_attention")) {
                throw new HfpruneException(where + ": layer_types[" + l + "] '" + types.get(l) + "' is not supported"
                        + " (full_attention or sliding_attention)");
            }
        }
        return sliding.isEmpty() ? SlidingWindow.NONE : new SlidingWindow(size, sliding);
    }

    /** Writes {@code rope_scaling} as transformers saves it; GGUF's per-frequency factors have no config.json form. */
    static void writeRopeScaling(ObjectNode o, RopeScaling scaling) {
        if (scaling instanceof RopeScaling.Linear l) {
            o.putObject("rope_scaling").put("rope_type", "linear").put("factor", l.factor());
        } else if (scaling instanceof RopeScaling.Llama3 l) {
            o.putObject("rope_scaling").put("rope_type", "llama3").put("factor", l.factor())
                    .put("low_freq_factor", l.lowFreqFactor()).put("high_freq_factor", l.highFreqFactor())
                    .put("original_max_position_embeddings", l.originalMaxPositionEmbeddings());
        } else if (scaling instanceof RopeScaling.FrequencyDivisors) {
            throw new HfpruneException(noConfigForm());
        } else {
            o.putNull("rope_scaling");
        }
    }

    static String noConfigForm() {
        return "the model's RoPE scaling is GGUF's per-frequency rope_freqs factors, which config.json's rope_scaling"
                + " cannot express; save it with --format gguf";
    }

    /** Writes the window keys of each family (none: the keys transformers saves for full attention). */
    static void writeSlidingWindow(ObjectNode o, ModelConfig c, String modelType) {
        SlidingWindow w = c.slidingWindow();
        int layers = c.numHiddenLayers();
        if (modelType.equals("mistral")) {
            if (w.isActive() && w.layers().size() != layers) {
                throw new IllegalArgumentException("Mistral's sliding_window holds for every layer, not only " + w.layers());
            }
            if (w.isActive()) {
                o.put("sliding_window", w.size());
            } else {
                o.putNull("sliding_window");
            }
        } else if (modelType.startsWith("qwen")) {
            o.put("use_sliding_window", w.isActive());
            if (!w.isActive()) {
                o.putNull("sliding_window");
                o.put("max_window_layers", layers);
                return;
            }
            o.put("sliding_window", w.size());
            int first = w.layers().get(0);
            o.put("max_window_layers", first);
            if (!w.equals(SlidingWindow.fromLayer(w.size(), first, layers))) { // not a suffix: only layer_types says it
                var types = o.putArray("layer_types");
                for (int l = 0; l < layers; l++) {
                    types.add(w.appliesTo(l) ? "sliding_attention" : "full_attention");
                }
            }
        } else if (w.isActive()) {
            throw new IllegalArgumentException(c.architecture() + " has no sliding window in transformers");
        }
    }

    private static double number(JsonNode node, String key, String at) {
        JsonNode v = node.get(key);
        if (v == null || v.isNull()) {
            throw new HfpruneException(at + " " + node + " lacks " + key);
        }
        if (!v.isNumber() || !(v.asDouble() > 0)) {
            throw new HfpruneException(at + " " + key + " must be a positive number, got " + v);
        }
        return v.asDouble();
    }

    private static int positiveInt(JsonNode node, String key, String at) {
        JsonNode v = node.get(key);
        if (v == null || v.isNull()) {
            throw new HfpruneException(at + " " + node + " lacks " + key);
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() <= 0) {
            throw new HfpruneException(at + " " + key + " must be a positive integer, got " + v);
        }
        return v.asInt();
    }
}
