package ai.hfprune.engine.importance;

import ai.hfprune.engine.model.ModelConfig;

/**
 * Matrix-product FLOPs of scoring, counted from the model's shapes: the forward pass's projections, attention products
 * (the full T×T score matrix, as computed) and LM head, and the products of the backward pass that scoring needs.
 * Element-wise work (norms, softmax, entropy) is not counted. {@code ScoringFlopsTest} checks the count against the
 * products libtorch's profiler records in a scoring pass.
 */
public final class ScoringFlops {
    private ScoringFlops() {
    }

    /** Per token and decoder layer: q_proj, k_proj and v_proj. */
    private static double qkv(ModelConfig c) {
        double h = c.hiddenSize();
        return 2 * h * c.numAttentionHeads() * c.headDim() + 2 * 2 * h * c.numKeyValueHeads() * c.headDim();
    }

    /** Per token and decoder layer: Q·Kᵀ and softmax(·)·V over all T positions. */
    private static double attention(ModelConfig c, int seqLen) {
        return 2 * 2 * (double) seqLen * c.numAttentionHeads() * c.headDim();
    }

    /** Per token and decoder layer: o_proj, gate, up and down. */
    private static double outputAndMlp(ModelConfig c) {
        double h = c.hiddenSize();
        return 2 * (double) c.numAttentionHeads() * c.headDim() * h + 3 * 2 * h * c.intermediateSize();
    }

    /** Per token: the LM head. */
    private static double head(ModelConfig c) {
        return 2 * (double) c.hiddenSize() * c.vocabSize();
    }

    /** Forward matrix-product FLOPs of one window of {@code seqLen} tokens. */
    public static double forwardPerWindow(ModelConfig c, int seqLen) {
        int layers = c.numHiddenLayers();
        return (layers * (qkv(c) + attention(c, seqLen) + outputAndMlp(c)) + head(c)) * seqLen;
    }

    /**
     * Forward plus the backward products scoring needs, which compute activation gradients only (no weight gradients):
     * one product per projection and for the head (its input's gradient: as many FLOPs as its forward), two per
     * attention product (both operands are activations: twice its forward), and none for layer 0's q, k, v and
     * attention, whose input, the embeddings, needs no gradient (A and O of layer 0 get theirs through o_proj and the
     * MLP; autograd leaves the rest out).
     */
    public static double scoringPerWindow(ModelConfig c, int seqLen) {
        int layers = c.numHiddenLayers();
        double backward = layers * outputAndMlp(c) + (layers - 1) * (qkv(c) + 2 * attention(c, seqLen)) + head(c);
        return forwardPerWindow(c, seqLen) + backward * seqLen;
    }
}
