package ai.hfprune.engine.compensate;

import java.util.Arrays;

/**
 * The calibration second moments that a least-squares refit needs, as additive float64 partial sums: per layer, the
 * Gram matrix G = Σ over calibration tokens of a·aᵀ of the input of {@code down_proj} (intermediate × intermediate)
 * and of the input of {@code o_proj} (heads·head_dim square). Matrices are symmetric and stored whole, row-major.
 * Like {@link ai.hfprune.engine.importance.Partial}, the statistics of disjoint batches add up to those of their union.
 *
 * @param tokens  calibration tokens (positions) summed
 * @param windows calibration windows summed
 * @param mlp     [layer]: G of down_proj's input, {@code mlpDim(l)²} values
 * @param attn    [layer]: G of o_proj's input, {@code attnDim(l)²} values
 * @param mlpOutputSensitivity  [layer][hidden]: Σ over the same tokens of (∂L/∂y)² of what the MLP block adds to the
 *                              residual stream (down_proj's output), L the scored criterion's loss; null when no
 *                              gradient was computed (only activation, magnitude or random were scored)
 * @param attnOutputSensitivity [layer][hidden]: the same for o_proj's output; null with the other
 */
public record GramStats(long tokens, long windows, double[][] mlp, double[][] attn, double[][] mlpOutputSensitivity,
                        double[][] attnOutputSensitivity) {

    public GramStats {
        if (mlp.length != attn.length) {
            throw new IllegalArgumentException("mlp and attention statistics differ in layers: " + mlp.length + " vs " + attn.length);
        }
        for (int l = 0; l < mlp.length; l++) {
            side(mlp[l], "layer " + l + " mlp");
            side(attn[l], "layer " + l + " attention");
        }
        if ((mlpOutputSensitivity == null) != (attnOutputSensitivity == null)) {
            throw new IllegalArgumentException("the output sensitivities come for both structures or for neither");
        }
        if (mlpOutputSensitivity != null && (mlpOutputSensitivity.length != mlp.length
                || attnOutputSensitivity.length != mlp.length)) {
            throw new IllegalArgumentException("the output sensitivities have " + mlpOutputSensitivity.length + " and "
                    + attnOutputSensitivity.length + " layers, the Gram matrices " + mlp.length);
        }
    }

    /** Gram matrices without output sensitivities. */
    public GramStats(long tokens, long windows, double[][] mlp, double[][] attn) {
        this(tokens, windows, mlp, attn, null, null);
    }

    public boolean hasSensitivity() {
        return mlpOutputSensitivity != null;
    }

    /** These statistics without the output sensitivities (what the pipeline carries). */
    public GramStats withoutSensitivity() {
        return new GramStats(tokens, windows, mlp, attn);
    }

    public static GramStats zero(int[] mlpDims, int[] attnDims) {
        double[][] m = new double[mlpDims.length][];
        double[][] a = new double[attnDims.length][];
        for (int l = 0; l < m.length; l++) {
            m[l] = new double[mlpDims[l] * mlpDims[l]];
            a[l] = new double[attnDims[l] * attnDims[l]];
        }
        return new GramStats(0, 0, m, a);
    }

    public int numLayers() {
        return mlp.length;
    }

    /** The side of layer {@code l}'s MLP Gram: its intermediate size. */
    public int mlpDim(int l) {
        return side(mlp[l], "mlp");
    }

    /** The side of layer {@code l}'s attention Gram: its heads × head_dim. */
    public int attnDim(int l) {
        return side(attn[l], "attention");
    }

    /** The sums of both: the statistics of the union of their batches. */
    public GramStats plus(GramStats other) {
        if (other.numLayers() != numLayers()) {
            throw new IllegalArgumentException("cannot add statistics of " + other.numLayers() + " layers to " + numLayers());
        }
        double[][] m = new double[mlp.length][];
        double[][] a = new double[attn.length][];
        for (int l = 0; l < m.length; l++) {
            m[l] = add(mlp[l], other.mlp[l]);
            a[l] = add(attn[l], other.attn[l]);
        }
        if (!hasSensitivity() || !other.hasSensitivity()) { // a sum over only some of the tokens would weigh them wrongly
            return new GramStats(tokens + other.tokens, windows + other.windows, m, a);
        }
        double[][] mo = new double[m.length][];
        double[][] ao = new double[m.length][];
        for (int l = 0; l < m.length; l++) {
            mo[l] = add(mlpOutputSensitivity[l], other.mlpOutputSensitivity[l]);
            ao[l] = add(attnOutputSensitivity[l], other.attnOutputSensitivity[l]);
        }
        return new GramStats(tokens + other.tokens, windows + other.windows, m, a, mo, ao);
    }

    private static double[] add(double[] x, double[] y) {
        if (x.length != y.length) {
            throw new IllegalArgumentException("statistics differ in size: " + x.length + " vs " + y.length + " values");
        }
        double[] out = Arrays.copyOf(x, x.length);
        for (int i = 0; i < y.length; i++) {
            out[i] += y[i];
        }
        return out;
    }

    private static int side(double[] square, String what) {
        int n = (int) Math.round(Math.sqrt(square.length));
        if ((long) n * n != square.length) {
            throw new IllegalArgumentException(what + " Gram matrix has " + square.length + " values, not a square number");
        }
        return n;
    }
}
