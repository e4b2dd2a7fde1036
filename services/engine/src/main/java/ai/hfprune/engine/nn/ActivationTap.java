package ai.hfprune.engine.nn;

import ai.djl.ndarray.NDArray;

/**
 * Sees, and may replace, the two activations that structured pruning cuts: the input of {@code down_proj}
 * (one column per MLP neuron) and each attention head's output (the input of {@code o_proj}).
 * Scoring uses it to record activations and to add zero probes whose gradients are ∂L/∂A and ∂L/∂O.
 */
public interface ActivationTap {

    ActivationTap NONE = new ActivationTap() {
    };

    /** @param a A = silu(gate_proj(x)) ⊙ up_proj(x), shape (batch, seq, intermediate) */
    default NDArray mlpActivation(int layer, NDArray a) {
        return a;
    }

    /** @param o the attention output per head, shape (batch, heads, seq, head_dim) */
    default NDArray attentionOutput(int layer, NDArray o) {
        return o;
    }

    /**
     * What the attention block adds to the residual stream: o_proj's output, shape (batch, seq, hidden). Scoring adds a
     * zero probe here to learn ∂L/∂ of it, the weight of o_proj's output error (see {@code ObsSelection}).
     */
    default NDArray attentionBlockOutput(int layer, NDArray y) {
        return y;
    }

    /** What the MLP block adds to the residual stream: down_proj's output, shape (batch, seq, hidden); as above. */
    default NDArray mlpBlockOutput(int layer, NDArray y) {
        return y;
    }
}
