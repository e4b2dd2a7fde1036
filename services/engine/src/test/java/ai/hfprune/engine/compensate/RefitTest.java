package ai.hfprune.engine.compensate;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.io.MapTensorSource;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.model.WeightCheck;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.LayerPlan;
import ai.hfprune.engine.prune.PrunePlan;
import ai.hfprune.engine.prune.PruneOptions;
import ai.hfprune.engine.prune.PrunedModel;
import ai.hfprune.engine.prune.Pruner;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The least-squares refit against an independent solution: the calibration activations of a tiny random model
 * (float64) stacked into matrices and solved by Householder QR ({@link QrLeastSquares}), never through a Gram matrix.
 */
class RefitTest {

    private static final double DAMPING = 0.01;
    // Qwen2-like with biases and GQA (4 heads over 2 KV groups of 2), 12 neurons, head_dim 4
    private static final ModelConfig CONFIG = new ModelConfig("Qwen2ForCausalLM", 37, 16, 12, 2, 4, 2, 4, 1e-6, 10000.0, 64,
            false, true, false, RopeStyle.HALF, 1, 2);
    private static TensorSource weights;
    private static LlamaModel model;
    private static int[][] windows;

    @BeforeAll
    static void setUp() {
        weights = RandomModels.weights(CONFIG, 11);
        model = LlamaModel.load(CONFIG, weights, Device.cpu(), DataType.FLOAT64);
        SplittableRandom r = new SplittableRandom(5);
        windows = new int[6][7]; // 42 tokens: more than the 12 neurons and 16 attention inputs, so the system is overdetermined
        for (int[] w : windows) {
            for (int t = 0; t < w.length; t++) {
                w[t] = r.nextInt(CONFIG.vocabSize());
            }
        }
    }

    @AfterAll
    static void tearDown() {
        model.close();
    }

    @Test
    void gramMatricesAreTheSumsOfOuterProductsOverTokens() {
        GramStats stats = stats(windows, 3);
        Stacked s = stacked();
        for (int l = 0; l < CONFIG.numHiddenLayers(); l++) {
            assertClose(gram(s.a[l], s.tokens, CONFIG.intermediateSize()), stats.mlp()[l], 1e-12, "mlp layer " + l);
            assertClose(gram(s.o[l], s.tokens, 16), stats.attn()[l], 1e-12, "attention layer " + l);
        }
        assertEquals(42, stats.tokens());
        assertEquals(6, stats.windows());
    }

    @Test
    void statisticsAreAdditiveOverBatches() {
        GramStats whole = stats(windows, 6);
        GramStats parts = stats(java.util.Arrays.copyOfRange(windows, 4, 6), 2)
                .plus(stats(java.util.Arrays.copyOfRange(windows, 0, 4), 1));
        for (int l = 0; l < CONFIG.numHiddenLayers(); l++) {
            assertClose(whole.mlp()[l], parts.mlp()[l], 1e-12, "mlp layer " + l);
            assertClose(whole.attn()[l], parts.attn()[l], 1e-12, "attention layer " + l);
        }
        assertEquals(whole.tokens(), parts.tokens());
    }

    @Test
    void refitEqualsAnIndependentLeastSquaresSolution() {
        PrunePlan plan = new PrunePlan(PruneOptions.uniform(0.25, 0.5), List.of(
                new LayerPlan(0, 12, sorted(0, 1, 2, 3, 5, 6, 8, 9, 11), 2, new int[] {1}, 2),
                new LayerPlan(1, 12, sorted(1, 2, 4, 5, 7, 8, 10, 11, 0), 2, new int[] {0}, 2)));
        PrunedModel pruned = Pruner.apply(CONFIG, weights, plan);
        PrunedModel refit = Refit.apply(weights, pruned, stats(windows, 2), DAMPING);
        Stacked s = stacked();
        for (int l = 0; l < CONFIG.numHiddenLayers(); l++) {
            LayerPlan p = plan.layer(l);
            String down = "model.layers." + l + ".mlp.down_proj.weight";
            assertClose(independent(s.a[l], s.tokens, 12, p.keptMlp(), weights.readFloats(down)),
                    toDoubles(refit.weights().readFloats(down)), 2e-6, "down_proj layer " + l);
            String o = "model.layers." + l + ".self_attn.o_proj.weight";
            assertClose(independent(s.o[l], s.tokens, 16, Refit.columns(p.keptHeads(), 4), weights.readFloats(o)),
                    toDoubles(refit.weights().readFloats(o)), 2e-6, "o_proj layer " + l);
            // the refit changes the weights (else the comparison above could hold for the plain slice)
            assertNotEquals(pruned.weights().readFloats(down)[0], refit.weights().readFloats(down)[0]);
            // nothing else moves
            String gate = "model.layers." + l + ".mlp.gate_proj.weight";
            assertArrayEquals(pruned.weights().readFloats(gate), refit.weights().readFloats(gate));
        }
    }

    @Test
    void aLayerThatKeepsEverythingIsLeftAlone() {
        LayerWidths widths = WeightCheck.layerWidths(CONFIG, weights);
        PrunePlan plan = new PrunePlan(PruneOptions.uniform(0, 0), List.of(
                LayerPlan.untouched(0, widths.intermediateSize(0), 2, 2), LayerPlan.untouched(1, widths.intermediateSize(1), 2, 2)));
        PrunedModel pruned = Pruner.apply(CONFIG, weights, plan);
        PrunedModel refit = Refit.apply(weights, pruned, stats(windows, 6), DAMPING);
        for (String name : weights.names()) {
            assertArrayEquals(weights.readFloats(name), refit.weights().readFloats(name), name);
        }
        assertSame(plan, refit.plan());
    }

    // ---- the independent computation -------------------------------------------------------------------------

    /** For a (rows × n) weight W: argmin_X Σ_t ‖W·a_t − X·a_t[K]‖² + δ‖X‖², δ = λ·mean_k Σ_t a_t[k]², by QR. */
    private static double[] independent(double[] acts, int tokens, int n, int[] kept, float[] w) {
        int rows = w.length / n;
        int k = kept.length;
        double[] design = new double[tokens * k];
        double[] target = new double[tokens * rows];
        double meanSquare = 0;
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < k; j++) {
                design[t * k + j] = acts[t * n + kept[j]];
                meanSquare += acts[t * n + kept[j]] * acts[t * n + kept[j]] / k;
            }
            for (int r = 0; r < rows; r++) {
                double y = 0;
                for (int i = 0; i < n; i++) {
                    y += w[r * n + i] * acts[t * n + i];
                }
                target[t * rows + r] = y;
            }
        }
        double[] xt = QrLeastSquares.solve(design, tokens, k, target, rows, DAMPING * meanSquare); // (k × rows) = Xᵀ
        double[] x = new double[rows * k];
        for (int j = 0; j < k; j++) {
            for (int r = 0; r < rows; r++) {
                x[r * k + j] = xt[j * rows + r];
            }
        }
        return x;
    }

    /** Every layer's A (tokens × intermediate) and o_proj input (tokens × heads·head_dim), token-major. */
    private record Stacked(int tokens, double[][] a, double[][] o) {
    }

    private static Stacked stacked() {
        int layers = CONFIG.numHiddenLayers();
        double[][] a = new double[layers][];
        double[][] o = new double[layers][];
        try (NDManager batch = model.manager().newSubManager()) {
            long[] ids = java.util.Arrays.stream(windows).flatMapToInt(java.util.Arrays::stream).asLongStream().toArray();
            model.forward(batch.create(ids, new Shape(windows.length, windows[0].length)), new ActivationTap() {
                @Override
                public NDArray mlpActivation(int layer, NDArray x) {
                    a[layer] = x.toDoubleArray(); // (windows, T, I): token-major already
                    return x;
                }

                @Override
                public NDArray attentionOutput(int layer, NDArray x) {
                    o[layer] = x.transpose(0, 2, 1, 3).toDoubleArray(); // (windows, T, heads, head_dim)
                    return x;
                }
            });
        }
        return new Stacked(windows.length * windows[0].length, a, o);
    }

    private static GramStats stats(int[][] w, int batchWindows) {
        ImportanceScorer scorer = new ImportanceScorer(model);
        try (GramAccumulator acc = new GramAccumulator(model.manager(), CONFIG.numHiddenLayers())) {
            for (int[][] batch : ai.hfprune.engine.data.CalibrationData.batches(w, batchWindows)) {
                scorer.score(batch, Set.of(Criterion.MAGNITUDE), acc);
            }
            return acc.drain();
        }
    }

    private static double[] gram(double[] x, int tokens, int n) {
        double[] g = new double[n * n];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    g[i * n + j] += x[t * n + i] * x[t * n + j];
                }
            }
        }
        return g;
    }

    private static int[] sorted(int... v) {
        return java.util.Arrays.stream(v).sorted().toArray();
    }

    private static double[] toDoubles(float[] x) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i];
        }
        return out;
    }

    /** max |e − a| ≤ tol · max |e|, and e is not all zero. */
    private static void assertClose(double[] expected, double[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what);
        double maxAbs = 0;
        double maxDiff = 0;
        for (int i = 0; i < expected.length; i++) {
            maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
            maxDiff = Math.max(maxDiff, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(maxAbs > 1e-3, what + ": the expected values are all near zero");
        assertTrue(maxDiff <= tol * maxAbs, what + ": max |difference| " + maxDiff + " of max " + maxAbs);
    }
}
