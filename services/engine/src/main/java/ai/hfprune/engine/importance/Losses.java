package ai.hfprune.engine.importance;

import ai.djl.ndarray.NDArray;

/** The calibration losses whose gradients the Taylor criteria use; each is a sum over windows of a per-window mean. */
final class Losses {
    private Losses() {
    }

    static NDArray of(Criterion c, NDArray logits, NDArray inputIds) {
        return switch (c) {
            case ENTROPY -> entropy(logits);
            case CE -> crossEntropy(logits, inputIds);
            default -> throw new IllegalArgumentException(c + " has no loss");
        };
    }

    /** L = Σ_w (1/T) Σ_t H(softmax(z_{w,t})), H(p) = −Σ_v p_v log p_v; the gradient flows through p and log p. */
    static NDArray entropy(NDArray logits) {
        NDArray logp = logits.logSoftmax(-1);
        NDArray h = logp.exp().mul(logp).sum(new int[] {-1}).neg(); // (windows, T)
        return h.mean(new int[] {1}).sum();
    }

    /** L = Σ_w (1/(T−1)) Σ_{t<T−1} −log p(x_{w,t+1} | z_{w,t}). */
    static NDArray crossEntropy(NDArray logits, NDArray inputIds) {
        NDArray logp = logits.get(":, :-1, :").logSoftmax(-1);
        NDArray targets = inputIds.get(":, 1:").expandDims(-1);
        NDArray nll = logp.gather(targets, -1).squeeze(-1).neg(); // (windows, T−1)
        return nll.mean(new int[] {1}).sum();
    }
}
