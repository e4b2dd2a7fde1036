package ai.hfprune.engine.importance;

import ai.djl.ndarray.NDArray;
import ai.hfprune.engine.nn.TokenArrays;

/**
 * The first-order Taylor terms HFPrune sums: Σ over tokens of |x ⊙ ∂L/∂x|, per MLP neuron and per attention head.
 *
 * <p>As abs then sum, not as an L1 norm: libtorch's norm over leading dimensions takes a slow reduction, 2.3 times the
 * time of abs and sum together on a (8, 256, 1408) float32 product (6.8 against 3.0 ms on one thread; issue 12).
 */
final class TaylorSums {
    private static final int[] TOKENS = {0, 1};
    private static final int[] TOKENS_AND_HEAD_DIMS = {0, 2, 3};

    private TaylorSums() {
    }

    /** @param a A, the input of down_proj, and {@code gradA} ∂L/∂A: shape (batch, seq, intermediate) */
    static double[] perNeuron(NDArray a, NDArray gradA) {
        return sumOfAbs(a.mul(gradA), TOKENS);
    }

    /** @param o each head's attention output, and {@code gradO} ∂L/∂O: shape (batch, heads, seq, head_dim) */
    static double[] perHead(NDArray o, NDArray gradO) {
        return sumOfAbs(o.mul(gradO), TOKENS_AND_HEAD_DIMS);
    }

    /** Closes the product and its absolute values at once: they are activation-sized, and a layer's pass may go on. */
    private static double[] sumOfAbs(NDArray product, int[] axes) {
        try (product; NDArray abs = product.abs(); NDArray sum = abs.sum(axes)) {
            return TokenArrays.doubles(sum);
        }
    }
}
