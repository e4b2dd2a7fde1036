package ai.hfprune.engine.importance;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;

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

    /**
     * The entropy's gradient with respect to the logits, written out, for a backward pass injected at the logits (no
     * autograd graph of the softmax, the logarithm and their products: about two thirds of the passes over the
     * (positions × vocab) logits): ∂/∂z_v of Σ over positions of H(softmax(z)) is −p_v (log p_v + H), so each position's
     * gradient is p ⊙ (Σ p log p − log p), without the loss's 1/T ({@link #weight}; the caller applies it).
     *
     * @return the gradient, shape of {@code logits}, and Σ over positions of H as a 0-d array; both attached to the
     *         manager of {@code logits}, neither part of a graph
     */
    static NDArray[] entropyGradient(NDArray logits) {
        NDArray logp = logits.stopGradient().logSoftmax(-1);
        NDArray p = logp.exp();
        NDArray plogp = p.mul(logp).sum(new int[] {-1}, true); // Σ_v p log p = −H per position
        NDArray entropySum = plogp.sum().neg();
        NDArray gradient = plogp.sub(logp).muli(p); // in the difference's place: one logits-sized array fewer
        logp.close();
        p.close();
        plogp.close();
        return new NDArray[] {gradient, entropySum};
    }

    /** L = Σ_w (1/(T−1)) Σ_{t<T−1} −log p(x_{w,t+1} | z_{w,t}). */
    static NDArray crossEntropy(NDArray logits, NDArray inputIds) {
        NDArray logp = logits.get(":, :-1, :").logSoftmax(-1);
        NDArray targets = inputIds.get(":, 1:").expandDims(-1);
        NDArray nll = logp.gather(targets, -1).squeeze(-1).neg(); // (windows, T−1)
        return nll.mean(new int[] {1}).sum();
    }

    /**
     * The terms of {@link #of}'s loss at positions [from, from + n) of every window, summed, without the per-window
     * mean's 1/T (or 1/(T−1)), which {@link #weight} gives: the loss is Σ over chunks of weight × chunkSum, exactly, as
     * each term depends only on its own position's logits. Null when the chunk holds no term (ce at position T−1). For
     * ce only: entropy's gradient is written out ({@link #entropyGradient}).
     *
     * @param logits the chunk's logits, shape (windows, n, vocab); the result is attached to its manager
     */
    static NDArray chunkSum(Criterion c, NDArray logits, NDArray inputIds, int from) {
        return switch (c) {
            case CE -> {
                int n = (int) logits.getShape().get(1);
                int terms = Math.min(n, (int) inputIds.getShape().get(1) - 1 - from); // position t predicts t + 1
                if (terms <= 0) {
                    yield null;
                }
                NDArray logp = logits.get(new NDIndex(":, :{}, :", terms)).logSoftmax(-1);
                NDArray targets = inputIds.get(new NDIndex(":, {}:{}", from + 1, from + 1 + terms));
                targets.attach(logits.getManager());
                yield logp.gather(targets.expandDims(-1), -1).neg().sum();
            }
            default -> throw new IllegalArgumentException(c + " has no loss");
        };
    }

    /** The factor of each term in the loss of windows of {@code seqLen} tokens: 1/T for entropy, 1/(T−1) for ce. */
    static double weight(Criterion c, int seqLen) {
        return switch (c) {
            case ENTROPY -> 1.0 / seqLen;
            case CE -> 1.0 / (seqLen - 1);
            default -> throw new IllegalArgumentException(c + " has no loss");
        };
    }
}
