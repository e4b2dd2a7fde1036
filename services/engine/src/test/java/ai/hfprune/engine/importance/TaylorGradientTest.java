package ai.hfprune.engine.importance;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Taylor scores, computed with probe gradients in one backward pass, against central finite differences
 * of the loss computed with forward passes only, on a tiny random model in float64.
 */
class TaylorGradientTest {

    private static final double EPS = 1e-5;
    private static LlamaModel model;
    private static int[][] windows;

    @BeforeAll
    static void setUp() {
        // Qwen2-like (biases) and GQA, so that every branch of the forward pass is on the gradient's path
        ModelConfig c = new ModelConfig("Qwen2ForCausalLM", 37, 16, 12, 2, 4, 2, 4, 1e-6, 10000.0, 64,
                false, true, false, RopeStyle.HALF, 1, 2);
        model = LlamaModel.load(c, RandomModels.weights(c, 7), Device.cpu(), DataType.FLOAT64);
        windows = TinyWindows.random(c.vocabSize(), 2, 5, 3);
    }

    @AfterAll
    static void tearDown() {
        model.close();
    }

    /** In both memory modes: the recompute path's layer-by-layer backward and chunked head against the same truth. */
    @ParameterizedTest
    @CsvSource({"ENTROPY, RECOMPUTE", "ENTROPY, STORE", "CE, RECOMPUTE", "CE, STORE"})
    void probeGradientsMatchFiniteDifferences(Criterion criterion, ScoringMemory memory) {
        // chunks of 2 positions (T = 5): the head is computed in three chunks, the last one without a ce term
        long twoPositions = 2L * windows.length * model.config().vocabSize();
        Partial analytic = new ImportanceScorer(model, memory, twoPositions).score(windows, Set.of(criterion)).get(criterion);
        Recorded recorded = record();
        int layers = model.layers().size();
        for (int l = 0; l < layers; l++) {
            double[] fdMlp = new double[analytic.mlp()[l].length];
            double[] fdHeads = new double[analytic.heads()[l].length];
            double[] a = recorded.a[l];
            double[] o = recorded.o[l];
            // A: (windows, T, I); every element is perturbed on its own
            for (int idx = 0; idx < a.length; idx++) {
                double g = finiteDifference(criterion, l, true, idx, recorded.aShape[l]);
                fdMlp[idx % fdMlp.length] += Math.abs(a[idx] * g);
            }
            // O: (windows, heads, T, head_dim)
            long[] s = recorded.oShape[l];
            for (int idx = 0; idx < o.length; idx++) {
                double g = finiteDifference(criterion, l, false, idx, s);
                int head = (int) ((idx / (s[2] * s[3])) % s[1]);
                fdHeads[head] += Math.abs(o[idx] * g);
            }
            assertClose(fdMlp, analytic.mlp()[l], criterion + " mlp layer " + l);
            assertClose(fdHeads, analytic.heads()[l], criterion + " heads layer " + l);
        }
        assertEquals(2, analytic.windows());
        assertEquals(10, analytic.tokens());
    }

    private static void assertClose(double[] expected, double[] actual, String what) {
        double scale = 0;
        for (double e : expected) {
            scale = Math.max(scale, Math.abs(e));
        }
        assertTrue(scale > 0, what + ": finite differences are all zero");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-6 * scale, what + " index " + i);
        }
    }

    private record Recorded(double[][] a, long[][] aShape, double[][] o, long[][] oShape) {
    }

    private static Recorded record() {
        int layers = model.layers().size();
        Recorded r = new Recorded(new double[layers][], new long[layers][], new double[layers][], new long[layers][]);
        try (NDManager batch = model.manager().newSubManager()) {
            model.forward(ids(batch), new ActivationTap() {
                @Override
                public NDArray mlpActivation(int layer, NDArray a) {
                    r.a[layer] = a.toDoubleArray();
                    r.aShape[layer] = a.getShape().getShape();
                    return a;
                }

                @Override
                public NDArray attentionOutput(int layer, NDArray o) {
                    r.o[layer] = o.toDoubleArray();
                    r.oShape[layer] = o.getShape().getShape();
                    return o;
                }
            });
        }
        return r;
    }

    /** (L(x + ε e_idx) − L(x − ε e_idx)) / 2ε for one element of A or O of one layer. */
    private static double finiteDifference(Criterion criterion, int layer, boolean mlp, int idx, long[] shape) {
        return (loss(criterion, layer, mlp, idx, shape, EPS) - loss(criterion, layer, mlp, idx, shape, -EPS)) / (2 * EPS);
    }

    private static double loss(Criterion criterion, int layer, boolean mlp, int idx, long[] shape, double delta) {
        try (NDManager batch = model.manager().newSubManager()) {
            NDArray ids = ids(batch);
            double[] bump = new double[(int) new Shape(shape).size()];
            bump[idx] = delta;
            NDArray perturbation = batch.create(bump, new Shape(shape));
            NDArray logits = model.forward(ids, new ActivationTap() {
                @Override
                public NDArray mlpActivation(int l, NDArray a) {
                    return mlp && l == layer ? a.add(perturbation) : a;
                }

                @Override
                public NDArray attentionOutput(int l, NDArray o) {
                    return !mlp && l == layer ? o.add(perturbation) : o;
                }
            });
            return Losses.of(criterion, logits, ids).getDouble();
        }
    }

    private static NDArray ids(NDManager batch) {
        long[] flat = new long[windows.length * windows[0].length];
        for (int w = 0; w < windows.length; w++) {
            for (int t = 0; t < windows[0].length; t++) {
                flat[w * windows[0].length + t] = windows[w][t];
            }
        }
        return batch.create(flat, new Shape(windows.length, windows[0].length));
    }

    /** The losses themselves, against a direct computation in Java from the logits. */
    @ParameterizedTest
    @EnumSource(names = {"ENTROPY", "CE"})
    void lossesMatchTheirDefinitions(Criterion criterion) {
        try (NDManager batch = model.manager().newSubManager()) {
            NDArray ids = ids(batch);
            NDArray logits = model.forward(ids, ActivationTap.NONE);
            int v = model.config().vocabSize();
            double[] z = logits.toDoubleArray();
            int t = windows[0].length;
            double expected = 0;
            for (int w = 0; w < windows.length; w++) {
                double perWindow = 0;
                for (int pos = 0; pos < t; pos++) {
                    double max = Double.NEGATIVE_INFINITY;
                    for (int k = 0; k < v; k++) {
                        max = Math.max(max, z[(w * t + pos) * v + k]);
                    }
                    double sum = 0;
                    for (int k = 0; k < v; k++) {
                        sum += Math.exp(z[(w * t + pos) * v + k] - max);
                    }
                    double logZ = max + Math.log(sum);
                    if (criterion == Criterion.ENTROPY) {
                        for (int k = 0; k < v; k++) {
                            double logp = z[(w * t + pos) * v + k] - logZ;
                            perWindow -= Math.exp(logp) * logp;
                        }
                    } else if (pos < t - 1) {
                        perWindow -= z[(w * t + pos) * v + windows[w][pos + 1]] - logZ;
                    }
                }
                expected += perWindow / (criterion == Criterion.ENTROPY ? t : t - 1);
            }
            assertEquals(expected, Losses.of(criterion, logits, ids).getDouble(), 1e-10);
        }
    }

    @org.junit.jupiter.api.Test
    void severalCriteriaShareOneForwardPass() {
        ImportanceScorer scorer = new ImportanceScorer(model);
        Map<Criterion, Partial> together = scorer.score(windows, Set.of(Criterion.ENTROPY, Criterion.CE, Criterion.ACTIVATION));
        for (Criterion c : together.keySet()) {
            Partial alone = scorer.score(windows, Set.of(c)).get(c);
            for (int l = 0; l < alone.mlp().length; l++) {
                for (int i = 0; i < alone.mlp()[l].length; i++) {
                    assertEquals(alone.mlp()[l][i], together.get(c).mlp()[l][i], 1e-12, c + " mlp");
                }
                for (int h = 0; h < alone.heads()[l].length; h++) {
                    assertEquals(alone.heads()[l][h], together.get(c).heads()[l][h], 1e-12, c + " heads");
                }
            }
        }
    }
}
