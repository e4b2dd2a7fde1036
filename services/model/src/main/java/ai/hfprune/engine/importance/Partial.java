package ai.hfprune.engine.importance;

import java.util.Arrays;

/**
 * The additive part of a criterion over some calibration windows: per layer, one float64 sum per MLP neuron
 * and one per query head. Partials of disjoint batches add up, in any order and grouping, to the partial of
 * their union; this is what scorers stream to the aggregator.
 *
 * @param mlp   [layer][neuron]: Σ|A·∂L/∂A| (gradient criteria) or Σ A² (activation); zeros where no data is needed
 * @param heads [layer][query head]: the same over each head's attention output O
 */
public record Partial(Criterion criterion, long windows, long tokens, double[][] mlp, double[][] heads) {

    public static Partial zero(Criterion criterion, int[] intermediateSizes, int[] numHeads) {
        double[][] mlp = new double[intermediateSizes.length][];
        double[][] heads = new double[numHeads.length][];
        for (int l = 0; l < mlp.length; l++) {
            mlp[l] = new double[intermediateSizes[l]];
            heads[l] = new double[numHeads[l]];
        }
        return new Partial(criterion, 0, 0, mlp, heads);
    }

    /** Adds {@code other} into this partial's arrays and returns the new totals. */
    public Partial plus(Partial other) {
        if (other.criterion != criterion || other.mlp.length != mlp.length) {
            throw new IllegalArgumentException("cannot add a " + other.criterion + " partial of " + other.mlp.length
                    + " layers to a " + criterion + " partial of " + mlp.length + " layers");
        }
        double[][] m = new double[mlp.length][];
        double[][] h = new double[heads.length][];
        for (int l = 0; l < mlp.length; l++) {
            m[l] = add(mlp[l], other.mlp[l]);
            h[l] = add(heads[l], other.heads[l]);
        }
        return new Partial(criterion, windows + other.windows, tokens + other.tokens, m, h);
    }

    private static double[] add(double[] a, double[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("partial vectors differ in length: " + a.length + " vs " + b.length);
        }
        double[] out = Arrays.copyOf(a, a.length);
        for (int i = 0; i < b.length; i++) {
            out[i] += b[i];
        }
        return out;
    }
}
