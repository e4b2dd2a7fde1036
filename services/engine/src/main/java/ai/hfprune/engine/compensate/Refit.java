package ai.hfprune.engine.compensate;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.MapTensorSource;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.prune.LayerPlan;
import ai.hfprune.engine.prune.PrunedModel;

/**
 * The training-free compensation of a cut: once a layer's kept set K is chosen, the kept input columns of
 * {@code down_proj} (and of {@code o_proj}, over the kept heads' dimensions) are replaced by the least-squares
 * solution that makes the layer's output on the calibration activations as close as possible to the dense output:
 * <pre>  minimize Σ_tokens ‖W·a − W'·a_K‖²  ⇒  W' = W·G[:,K]·(G[K,K] + λ·mean(diag G[K,K])·I)⁻¹</pre>
 * with G = Σ a·aᵀ ({@link GramStats}) and W the dense weight. λ damps directions the calibration data barely
 * excites (and makes the system solvable when a kept neuron never fired). Shapes do not change, so the result loads
 * exactly as an uncompensated one; a layer whose kept set is whole is left alone.
 *
 * <p>Solved in float64 by the engine (LAPACK through PyTorch): a 7B model's MLP (K ≈ 8,800 of 11,008) costs two
 * products and one inverse of that size per layer.
 */
public final class Refit {
    private Refit() {
    }

    /**
     * @param dense  the dense weights the plan was applied to (Hugging Face names, the same layout as {@code pruned})
     * @param pruned the sliced model of {@link ai.hfprune.engine.prune.Pruner}
     * @return the same model with refit {@code down_proj} and {@code o_proj} weights
     */
    public static PrunedModel apply(TensorSource dense, PrunedModel pruned, GramStats stats, double damping) {
        Compensation.checkDamping(damping);
        int layers = pruned.plan().layers().size();
        if (stats.numLayers() != layers) {
            throw new HfpruneException("the calibration statistics have " + stats.numLayers() + " layers, the model " + layers);
        }
        int headDim = pruned.config().headDim();
        MapTensorSource out = copy(pruned.weights());
        try (NDManager manager = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
            for (LayerPlan p : pruned.plan().layers()) {
                String prefix = "model.layers." + p.layer() + ".";
                if (p.keptMlp().length < p.originalMlp()) {
                    String name = prefix + "mlp.down_proj.weight";
                    requireSide(stats.mlpDim(p.layer()), p.originalMlp(), "MLP", p.layer());
                    out.put(name, out.shape(name), solve(manager, dense, name, stats.mlp()[p.layer()], p.keptMlp(), damping));
                }
                if (p.keptKvGroups().length < p.originalKvGroups()) {
                    String name = prefix + "self_attn.o_proj.weight";
                    requireSide(stats.attnDim(p.layer()), p.originalHeads() * headDim, "attention", p.layer());
                    int[] kept = columns(p.keptHeads(), headDim);
                    out.put(name, out.shape(name), solve(manager, dense, name, stats.attn()[p.layer()], kept, damping));
                }
            }
        }
        return new PrunedModel(pruned.config(), out, pruned.plan());
    }

    /** W·G[:,K]·(G[K,K] + δI)⁻¹ for the (rows × n) weight {@code name}, as float32 (rows × |K|), row-major. */
    static float[] solve(NDManager manager, TensorSource dense, String name, double[] gram, int[] kept, double damping) {
        long[] shape = dense.shape(name);
        int n = (int) shape[1];
        int k = kept.length;
        double[] gAllK = new double[n * k];
        double[] gKK = new double[k * k];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < k; j++) {
                gAllK[i * k + j] = gram[i * n + kept[j]];
            }
        }
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < k; j++) {
                gKK[i * k + j] = gram[kept[i] * n + kept[j]];
            }
        }
        return solve(manager, dense.readFloats(name), (int) shape[0], n, gAllK, gKK, k, damping, name);
    }

    /**
     * W·C·(G + δI)⁻¹ with δ = λ·mean(diag G): the least-squares weight (rows × k) that maps the k kept inputs to what W
     * (rows × n) computes from all n, given the cross-moments C (n × k) and the kept inputs' Gram G (k × k).
     */
    static float[] solve(NDManager manager, float[] w, int rows, int n, double[] cross, double[] gram, int k, double damping,
                         String name) {
        double meanDiagonal = 0;
        for (int i = 0; i < k; i++) {
            meanDiagonal += gram[i * k + i] / k;
        }
        double delta = damping * meanDiagonal;
        if (!(delta > 0)) {
            delta = 1e-12 * Math.max(meanDiagonal, 1e-300); // λ = 0: only guard an exactly singular system
        }
        double[] damped = gram.clone();
        for (int i = 0; i < k; i++) {
            damped[i * k + i] += delta;
        }
        try (NDManager scratch = manager.newSubManager()) {
            NDArray weight = scratch.create(toDoubles(w), new Shape(rows, n));
            NDArray target = weight.matMul(scratch.create(cross, new Shape(n, k)));   // W·C        (rows × k)
            NDArray inverse = scratch.create(damped, new Shape(k, k)).inverse();     // (G + δI)⁻¹
            double[] solved = target.matMul(inverse).toDoubleArray();
            float[] result = new float[solved.length];
            for (int i = 0; i < solved.length; i++) {
                if (!Double.isFinite(solved[i])) {
                    throw new HfpruneException("the least-squares refit of " + name + " is not finite: the calibration"
                            + " statistics are degenerate; give more calibration data or a larger --damping");
                }
                result[i] = (float) solved[i];
            }
            return result;
        }
    }

    /** The input columns of the kept heads: head h owns columns h·d … h·d + d − 1. */
    static int[] columns(int[] heads, int headDim) {
        int[] out = new int[heads.length * headDim];
        for (int i = 0; i < heads.length; i++) {
            for (int d = 0; d < headDim; d++) {
                out[i * headDim + d] = heads[i] * headDim + d;
            }
        }
        return out;
    }

    private static void requireSide(int side, int expected, String what, int layer) {
        if (side != expected) {
            throw new HfpruneException("the calibration statistics of layer " + layer + " have a " + what + " Gram of side "
                    + side + ", but the model's layer has " + expected + ": statistics of another model?");
        }
    }

    /** A new map of the same tensors (sharing the arrays of an in-memory source: only replaced entries differ). */
    static MapTensorSource copy(TensorSource weights) {
        MapTensorSource out = new MapTensorSource();
        for (String name : weights.names()) {
            float[] data = weights instanceof MapTensorSource map ? map.get(name).data() : weights.readFloats(name);
            out.put(name, weights.shape(name), data);
        }
        return out;
    }

    private static double[] toDoubles(float[] x) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i];
        }
        return out;
    }
}
