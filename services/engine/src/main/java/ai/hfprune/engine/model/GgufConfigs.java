package ai.hfprune.engine.model;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufFile;

import java.util.List;

/** A {@link ModelConfig} from the metadata of a GGUF file of architecture {@code llama}. */
public final class GgufConfigs {
    private GgufConfigs() {
    }

    /** GGUF stores these as float32: 1e-5 arrives as 9.99999974738e-06; keep the number the float stands for. */
    private static double shortest(Number n) {
        return n instanceof Float f ? Double.parseDouble(Float.toString(f)) : n.doubleValue();
    }

    public static ModelConfig read(GgufFile gguf) {
        String arch = gguf.string("general.architecture");
        if (!"llama".equals(arch)) {
            throw new HfpruneException(gguf.path() + ": unsupported GGUF architecture '" + arch + "' (supported: llama)");
        }
        int hidden = gguf.requireInt("llama.embedding_length");
        int heads = gguf.requireInt("llama.attention.head_count");
        Number kvHeads = gguf.number("llama.attention.head_count_kv");
        Number keyLength = gguf.number("llama.attention.key_length");
        Number theta = gguf.number("llama.rope.freq_base");
        Number eps = gguf.number("llama.attention.layer_norm_rms_epsilon");
        Number context = gguf.number("llama.context_length");
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
                    gguf.requireInt("llama.feed_forward_length"),
                    gguf.requireInt("llama.block_count"),
                    heads,
                    kvHeads == null ? heads : kvHeads.intValue(),
                    keyLength == null ? hidden / heads : keyLength.intValue(),
                    eps == null ? 1e-5 : shortest(eps),
                    theta == null ? 10000.0 : shortest(theta),
                    context == null ? 2048 : context.intValue(),
                    !gguf.tensors().containsKey("output.weight"),
                    false,
                    false,
                    RopeStyle.INTERLEAVED,
                    bos == null ? 1 : bos.intValue(),
                    eos == null ? 2 : eos.intValue());
        } catch (IllegalArgumentException e) {
            throw new HfpruneException(gguf.path() + ": " + e.getMessage());
        }
    }
}
