package ai.hfprune.engine.importance;

import ai.hfprune.engine.model.ModelConfig;

/**
 * Matrix-product FLOPs of scoring, counted from the model's shapes: the forward pass's projections, attention
 * products (the full T×T score matrix, as computed) and LM head, times two for a backward pass that computes input
 * gradients only. Element-wise work (norms, softmax, entropy) is not counted.
 */
public final class ScoringFlops {
    private ScoringFlops() {
    }

    /** Forward matrix-product FLOPs of one window of {@code seqLen} tokens. */
    public static double forwardPerWindow(ModelConfig c, int seqLen) {
        double h = c.hiddenSize();
        double q = (double) c.numAttentionHeads() * c.headDim();
        double kv = (double) c.numKeyValueHeads() * c.headDim();
        double perTokenLayer = 2 * h * q      // q_proj
                + 2 * 2 * h * kv                // k_proj, v_proj
                + 2 * q * h                     // o_proj
                + 3 * 2 * h * c.intermediateSize() // gate, up, down
                + 2 * 2 * seqLen * q;           // Q·Kᵀ and softmax(·)·V, per token over all T positions
        double perToken = c.numHiddenLayers() * perTokenLayer + 2 * h * c.vocabSize();
        return perToken * seqLen;
    }

    /** Forward plus activation-gradient backward. */
    public static double scoringPerWindow(ModelConfig c, int seqLen) {
        return 2 * forwardPerWindow(c, seqLen);
    }
}
