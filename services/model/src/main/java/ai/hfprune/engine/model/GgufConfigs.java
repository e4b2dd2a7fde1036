package ai.hfprune.engine.model;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufFile;

import java.util.List;

/**
 * A {@link ModelConfig} from the metadata of a GGUF file of architecture {@code llama}, or {@code deci}: llama.cpp's
 * name for LLaMA with per-layer widths (arrays of feed-forward widths and head counts), which hfprune writes for a
 * non-uniformly pruned model. The config then holds the largest widths; each layer's own comes from its weights.
 */
public final class GgufConfigs {
    private GgufConfigs() {
    }

    /** GGUF stores these as float32: 1e-5 arrives as 9.99999974738e-06; keep the number the float stands for. */
    private static double shortest(Number n) {
        return n instanceof Float f ? Double.parseDouble(Float.toString(f)) : n.doubleValue();
    }

    /** A width that is one number, or one per layer (deci): the largest. */
    private static int largest(GgufFile gguf, String key) {
        List<Object> perLayer = gguf.array(key);
        if (perLayer == null) {
            return gguf.requireInt(key);
        }
        return perLayer.stream().mapToInt(v -> ((Number) v).intValue()).max()
                .orElseThrow(() -> new HfpruneException(gguf.path() + ": GGUF metadata " + key + " is an empty array"));
    }

    /** The tensor in which llama.cpp carries Llama 3.1's RoPE scaling: one divisor per rotated pair. */
    public static final String ROPE_FREQS = "rope_freqs.weight";

    /**
     * RoPE scaling as llama.cpp applies it: {@code rope.scaling.factor} (or the older {@code rope.scale_linear})
     * multiplies every angle by 1/factor whatever {@code rope.scaling.type} says, which defaults to linear; YaRN and
     * LongRoPE change more than that and are refused. The {@code rope_freqs} tensor divides each pair's angle by its
     * own factor (ggml_rope_ext's freq_factors).
     */
    static RopeScaling ropeScaling(GgufFile gguf, String a) {
        String type = gguf.string(a + "rope.scaling.type");
        if (type != null && !type.equals("linear") && !type.equals("none")) {
            throw new HfpruneException(gguf.path() + ": GGUF rope.scaling.type '" + type + "' is not supported (hfprune"
                    + " applies linear scaling and rope_freqs factors)");
        }
        Number factor = gguf.number(a + "rope.scaling.factor");
        if (factor == null) {
            factor = gguf.number(a + "rope.scale_linear");
        }
        boolean linear = factor != null && factor.doubleValue() != 0 && factor.doubleValue() != 1;
        GgufFile.TensorInfo freqs = gguf.tensors().get(ROPE_FREQS);
        try {
            if (freqs != null && linear) {
                throw new HfpruneException(gguf.path() + ": GGUF has both rope_freqs and a linear rope.scaling.factor;"
                        + " hfprune applies one or the other");
            }
            if (freqs != null) {
                java.nio.FloatBuffer divisors = java.nio.FloatBuffer.allocate((int) freqs.numel());
                gguf.readFloats(ROPE_FREQS, divisors);
                return RopeScaling.FrequencyDivisors.of(divisors.array());
            }
            return linear ? new RopeScaling.Linear(shortest(factor)) : RopeScaling.NONE;
        } catch (IllegalArgumentException e) {
            throw new HfpruneException(gguf.path() + ": " + e.getMessage());
        }
    }

    public static ModelConfig read(GgufFile gguf) {
        String arch = gguf.string("general.architecture");
        if (!"llama".equals(arch) && !"deci".equals(arch)) {
            throw new HfpruneException(gguf.path() + ": unsupported GGUF architecture '" + arch + "' (supported: llama, deci)");
        }
        String a = arch + ".";
        int hidden = gguf.requireInt(a + "embedding_length");
        int heads = largest(gguf, a + "attention.head_count");
        String kvKey = a + "attention.head_count_kv";
        Integer kvHeads = gguf.metadata().containsKey(kvKey) ? largest(gguf, kvKey) : null;
        Number keyLength = gguf.number(a + "attention.key_length");
        Number theta = gguf.number(a + "rope.freq_base");
        Number eps = gguf.number(a + "attention.layer_norm_rms_epsilon");
        Number context = gguf.number(a + "context_length");
        List<Object> tokens = gguf.array("tokenizer.ggml.tokens");
        if (tokens == null) {
            throw new HfpruneException(gguf.path() + ": GGUF metadata lacks tokenizer.ggml.tokens");
        }
        Number bos = gguf.number("tokenizer.ggml.bos_token_id");
        Number eos = gguf.number("tokenizer.ggml.eos_token_id");
        try {
            return new ModelConfig(
                    "LlamaForCausalLM",
                    tokens.size(),
                    hidden,
                    largest(gguf, a + "feed_forward_length"),
                    gguf.requireInt(a + "block_count"),
                    heads,
                    kvHeads == null ? heads : kvHeads,
                    keyLength == null ? hidden / heads : keyLength.intValue(),
                    eps == null ? 1e-5 : shortest(eps),
                    theta == null ? 10000.0 : shortest(theta),
                    context == null ? 2048 : context.intValue(),
                    !gguf.tensors().containsKey("output.weight"),
                    false,
                    false,
                    RopeStyle.INTERLEAVED,
                    bos == null ? 1 : bos.intValue(),
                    eos == null ? 2 : eos.intValue(),
                    ropeScaling(gguf, a),
                    SlidingWindow.NONE); // llama.cpp's llama and deci attend to the whole context
        } catch (IllegalArgumentException e) {
            throw new HfpruneException(gguf.path() + ": " + e.getMessage());
        }
    }
}
