package ai.hfprune.engine.io;

import java.nio.FloatBuffer;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The tensors of a GGUF llama file under their Hugging Face names ({@code blk.0.ffn_down} → {@code model.layers.0.mlp.down_proj}). */
public final class GgufTensorSource implements TensorSource {

    private static final Map<String, String> GLOBAL_NAMES = Map.of(
            "token_embd.weight", "model.embed_tokens.weight",
            "output_norm.weight", "model.norm.weight",
            "output.weight", "lm_head.weight");

    private static final Map<String, String> LAYER_NAMES = Map.ofEntries(
            Map.entry("attn_norm", "input_layernorm"),
            Map.entry("attn_q", "self_attn.q_proj"),
            Map.entry("attn_k", "self_attn.k_proj"),
            Map.entry("attn_v", "self_attn.v_proj"),
            Map.entry("attn_output", "self_attn.o_proj"),
            Map.entry("attn_q_norm", "self_attn.q_norm"),
            Map.entry("attn_k_norm", "self_attn.k_norm"),
            Map.entry("ffn_norm", "post_attention_layernorm"),
            Map.entry("ffn_gate", "mlp.gate_proj"),
            Map.entry("ffn_up", "mlp.up_proj"),
            Map.entry("ffn_down", "mlp.down_proj"));

    private static final Pattern LAYER_TENSOR = Pattern.compile("blk\\.(\\d+)\\.([a-z_]+)\\.(weight|bias)");
    private static final Pattern HF_LAYER_TENSOR = Pattern.compile("model\\.layers\\.(\\d+)\\.([a-z_]+\\.[a-z_]+|[a-z_]+)\\.(weight|bias)");

    private final GgufFile gguf;
    /** Hugging Face name → GGUF name. */
    private final Map<String, String> names = new LinkedHashMap<>();

    public GgufTensorSource(GgufFile gguf) {
        this.gguf = gguf;
        for (String ggufName : gguf.tensors().keySet()) {
            String hf = hfName(ggufName);
            if (hf != null) {
                names.put(hf, ggufName);
            }
        }
    }

    static String hfName(String ggufName) {
        if (GLOBAL_NAMES.containsKey(ggufName)) {
            return GLOBAL_NAMES.get(ggufName);
        }
        Matcher m = LAYER_TENSOR.matcher(ggufName);
        if (m.matches() && LAYER_NAMES.containsKey(m.group(2))) {
            return "model.layers." + m.group(1) + "." + LAYER_NAMES.get(m.group(2)) + "." + m.group(3);
        }
        return null; // e.g. rope_freqs: not a weight the forward pass uses
    }

    /** The inverse of {@link #hfName}: the GGUF name of a Hugging Face tensor name, or null for one GGUF has none for. */
    public static String toGgufName(String hfName) {
        for (Map.Entry<String, String> e : GLOBAL_NAMES.entrySet()) {
            if (e.getValue().equals(hfName)) {
                return e.getKey();
            }
        }
        Matcher m = HF_LAYER_TENSOR.matcher(hfName);
        if (m.matches()) {
            for (Map.Entry<String, String> e : LAYER_NAMES.entrySet()) {
                if (e.getValue().equals(m.group(2))) {
                    return "blk." + m.group(1) + "." + e.getKey() + "." + m.group(3);
                }
            }
        }
        return null;
    }

    public GgufFile gguf() {
        return gguf;
    }

    @Override
    public Set<String> names() {
        return Collections.unmodifiableSet(names.keySet());
    }

    @Override
    public long[] shape(String name) {
        return gguf.tensors().get(ggufName(name)).shape().clone();
    }

    @Override
    public void readFloats(String name, long first, FloatBuffer dst) {
        gguf.readFloats(ggufName(name), first, dst);
    }

    private String ggufName(String name) {
        String g = names.get(name);
        if (g == null) {
            throw new ai.hfprune.engine.HfpruneException(gguf.path() + " has no tensor for " + name);
        }
        return g;
    }

    @Override
    public void close() {
        gguf.close();
    }
}
