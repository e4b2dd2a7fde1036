package ai.hfprune.engine.model;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.TensorSource;

import java.util.Arrays;

/**
 * Checks, before any weight is loaded, that a checkpoint holds every tensor a LLaMA/Qwen decoder needs with the shape
 * its config implies, so that a mismatch is reported by name rather than as a failed matrix product deep in the
 * forward pass.
 *
 * <p>Structured pruning narrows layers, so within a layer the attention may have fewer whole heads than the config
 * (q/o by query heads, k/v by key/value heads, keeping whole GQA groups) and the MLP fewer channels than
 * intermediate_size, as long as the layer's tensors agree with each other; where config.json lists the per-layer widths,
 * {@link #checkLayerWidths} holds the weights to them. Everything else (vocabulary, hidden size, head_dim, norms) must
 * match exactly.
 */
public final class WeightCheck {
    private WeightCheck() {
    }

    public static void checkShapes(ModelConfig c, TensorSource s) {
        long vocab = c.vocabSize();
        long hidden = c.hiddenSize();
        long headDim = c.headDim();

        expect(s, "model.embed_tokens.weight", vocab, hidden);
        expect(s, "model.norm.weight", hidden);
        if (!c.tieWordEmbeddings() || s.has("lm_head.weight")) {
            expect(s, "lm_head.weight", vocab, hidden);
        }

        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            expect(s, p + "input_layernorm.weight", hidden);
            expect(s, p + "post_attention_layernorm.weight", hidden);

            // Attention: widths come from q_proj and k_proj, then everything else must agree with them.
            String q = p + "self_attn.q_proj.weight";
            String k = p + "self_attn.k_proj.weight";
            long qRows = rows(s, q, c.numAttentionHeads() * headDim, hidden, headDim);
            long kvRows = rows(s, k, c.numKeyValueHeads() * headDim, hidden, headDim);
            long qHeads = qRows / headDim;
            long kvHeads = kvRows / headDim;
            if (kvHeads == 0 ? qHeads != 0 : qHeads % kvHeads != 0) {
                throw new HfpruneException("layer " + i + " has " + qHeads + " query heads (" + q + " " + shape(s, q)
                        + ") for " + kvHeads + " key/value heads (" + k + " " + shape(s, k)
                        + "); query heads must be a multiple of key/value heads");
            }
            expect(s, p + "self_attn.v_proj.weight", "as k_proj has " + kvRows + " rows", kvRows, hidden);
            expect(s, p + "self_attn.o_proj.weight", "as q_proj has " + qRows + " rows", hidden, qRows);
            if (c.attentionBias()) {
                expect(s, p + "self_attn.q_proj.bias", "as q_proj has " + qRows + " rows", qRows);
                expect(s, p + "self_attn.k_proj.bias", "as k_proj has " + kvRows + " rows", kvRows);
                expect(s, p + "self_attn.v_proj.bias", "as k_proj has " + kvRows + " rows", kvRows);
            }
            if (c.qkNorm()) {
                expect(s, p + "self_attn.q_norm.weight", headDim);
                expect(s, p + "self_attn.k_norm.weight", headDim);
            }

            // MLP: the width comes from gate_proj; up and down must agree.
            long mlpRows = rows(s, p + "mlp.gate_proj.weight", c.intermediateSize(), hidden, 1);
            expect(s, p + "mlp.up_proj.weight", "as gate_proj has " + mlpRows + " rows", mlpRows, hidden);
            expect(s, p + "mlp.down_proj.weight", "as gate_proj has " + mlpRows + " rows", hidden, mlpRows);
        }
    }

    /**
     * Each layer's width as its weights have it (q_proj, k_proj and gate_proj rows); call after {@link #checkShapes},
     * which guarantees the other tensors of the layer agree.
     */
    public static LayerWidths layerWidths(ModelConfig c, TensorSource s) {
        int n = c.numHiddenLayers();
        int[] mlp = new int[n];
        int[] heads = new int[n];
        int[] kv = new int[n];
        for (int i = 0; i < n; i++) {
            String p = "model.layers." + i + ".";
            mlp[i] = (int) s.shape(p + "mlp.gate_proj.weight")[0];
            heads[i] = (int) (s.shape(p + "self_attn.q_proj.weight")[0] / c.headDim());
            kv[i] = (int) (s.shape(p + "self_attn.k_proj.weight")[0] / c.headDim());
        }
        return new LayerWidths(mlp, heads, kv);
    }

    /**
     * Checks that the weights have exactly the per-layer widths config.json declares (its optional per-layer lists),
     * after {@link #checkShapes}.
     */
    public static void checkLayerWidths(ModelConfig c, LayerWidths declared, TensorSource s) {
        checkWidths(c, declared, s, true);
    }

    /**
     * Checks that every layer has exactly the widths of config.json's scalar fields (intermediate_size,
     * num_attention_heads, num_key_value_heads), after {@link #checkShapes}: a config.json without the per-layer
     * lists describes a model whose layers are all alike, as transformers builds it. Without this check the weights
     * would silently win over the config that contradicts them.
     */
    public static void checkUniformWidths(ModelConfig c, TensorSource s) {
        checkWidths(c, LayerWidths.uniform(c), s, false);
    }

    private static void checkWidths(ModelConfig c, LayerWidths declared, TensorSource s, boolean perLayerLists) {
        LayerWidths actual = layerWidths(c, s);
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            mustEqual(perLayerLists ? HfConfigs.INTERMEDIATE_SIZES + "[" + i + "]" : "intermediate_size",
                    declared.intermediateSize(i), actual.intermediateSize(i),
                    p + "mlp.gate_proj.weight " + shape(s, p + "mlp.gate_proj.weight"));
            mustEqual(perLayerLists ? HfConfigs.ATTENTION_HEADS_PER_LAYER + "[" + i + "]" : "num_attention_heads",
                    declared.numAttentionHeads(i), actual.numAttentionHeads(i),
                    p + "self_attn.q_proj.weight " + shape(s, p + "self_attn.q_proj.weight"));
            mustEqual(perLayerLists ? HfConfigs.KEY_VALUE_HEADS_PER_LAYER + "[" + i + "]" : "num_key_value_heads",
                    declared.numKeyValueHeads(i), actual.numKeyValueHeads(i),
                    p + "self_attn.k_proj.weight " + shape(s, p + "self_attn.k_proj.weight"));
        }
    }

    private static void mustEqual(String key, int declared, int actual, String tensor) {
        if (declared != actual) {
            throw new HfpruneException("config.json's " + key + " is " + declared + " but the weights have " + actual
                    + " (" + tensor + ")");
        }
    }

    /**
     * Checks a [rows, cols] weight whose row count may be pruned: a multiple of {@code unit} no larger than
     * {@code maxRows}. Returns the row count.
     */
    private static long rows(TensorSource s, String name, long maxRows, long cols, long unit) {
        requirePresent(s, name, maxRows, cols);
        long[] shape = s.shape(name);
        if (shape.length != 2 || shape[1] != cols || shape[0] > maxRows || shape[0] % unit != 0) {
            String allowed = unit == 1 ? "or fewer rows" : "or fewer whole heads of " + unit + " rows";
            throw new HfpruneException("tensor " + name + " has shape " + Arrays.toString(shape)
                    + " but config.json implies " + Arrays.toString(new long[] {maxRows, cols}) + " (" + allowed + ")");
        }
        return shape[0];
    }

    private static void expect(TensorSource s, String name, long... expected) {
        expect(s, name, null, expected);
    }

    /** {@code why} explains an expected shape that depends on another tensor of a possibly pruned layer. */
    private static void expect(TensorSource s, String name, String why, long... expected) {
        requirePresent(s, name, expected);
        long[] shape = s.shape(name);
        if (!Arrays.equals(shape, expected)) {
            throw new HfpruneException("tensor " + name + " has shape " + Arrays.toString(shape)
                    + " but config.json implies " + Arrays.toString(expected) + (why == null ? "" : " (" + why + ")"));
        }
    }

    private static void requirePresent(TensorSource s, String name, long... expected) {
        if (!s.has(name)) {
            throw new HfpruneException("the checkpoint has no tensor " + name + " (config.json implies one of shape "
                    + Arrays.toString(expected) + ")");
        }
    }

    private static String shape(TensorSource s, String name) {
        return Arrays.toString(s.shape(name));
    }
}
