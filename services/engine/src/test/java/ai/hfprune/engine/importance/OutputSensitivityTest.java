package ai.hfprune.engine.importance;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.nn.TokenArrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The output sensitivities that weigh the refit-aware selection, Σ over tokens of (∂L/∂y)² per hidden dimension of
 * what each block adds to the residual stream, against central finite differences of the entropy loss on a tiny
 * float64 model: every (window, position, dimension) of the block's output is nudged by ±ε through a tap, with no
 * autograd at all. The store path is checked here; {@code ScoringMemoryTest} shows the recompute path equal to it.
 */
class OutputSensitivityTest {

    private static final double EPS = 1e-5;
    private static LlamaModel model;
    private static int[][] windows;

    @BeforeAll
    static void setUp() {
        ModelConfig c = new ModelConfig("LlamaForCausalLM", 29, 8, 12, 2, 4, 2, 2, 1e-6, 10000.0, 32,
                false, false, false, RopeStyle.HALF, 1, 2);
        model = LlamaModel.load(c, RandomModels.weights(c, 3), Device.cpu(), DataType.FLOAT64);
        windows = TinyWindows.random(c.vocabSize(), 2, 4, 9);
    }

    @AfterAll
    static void tearDown() {
        model.close();
    }

    @Test
    void sensitivitiesAreTheSquaredGradientsOfTheEntropy() {
        ScoringMemory memory = ScoringMemory.STORE;
        GramStats stats;
        try (GramAccumulator acc = new GramAccumulator(model.manager(), model.layers().size())) {
            new ImportanceScorer(model, memory).score(windows, Set.of(Criterion.ENTROPY), acc);
            stats = acc.drain();
        }
        assertTrue(stats.hasSensitivity());
        int hidden = model.config().hiddenSize();
        for (int l = 0; l < model.layers().size(); l++) {
            for (boolean mlp : new boolean[] {false, true}) {
                double[] expected = new double[hidden];
                for (int w = 0; w < windows.length; w++) {
                    for (int t = 0; t < windows[0].length; t++) {
                        for (int d = 0; d < hidden; d++) {
                            double g = (loss(l, mlp, w, t, d, EPS) - loss(l, mlp, w, t, d, -EPS)) / (2 * EPS);
                            expected[d] += g * g;
                        }
                    }
                }
                double[] actual = mlp ? stats.mlpOutputSensitivity()[l] : stats.attnOutputSensitivity()[l];
                double scale = 0;
                for (double e : expected) {
                    scale = Math.max(scale, e);
                }
                assertTrue(scale > 0);
                for (int d = 0; d < hidden; d++) {
                    assertEquals(expected[d], actual[d], 1e-6 * scale, memory + " layer " + l + (mlp ? " mlp" : " attn") + " dim " + d);
                }
            }
        }
    }

    /** The entropy loss with the block output of layer {@code layer} nudged by {@code eps} at one element. */
    private static double loss(int layer, boolean mlp, int w, int t, int d, double eps) {
        try (NDManager batch = model.manager().newSubManager()) {
            NDArray ids = TokenArrays.ids(batch, windows);
            ActivationTap nudge = new ActivationTap() {
                @Override
                public NDArray attentionBlockOutput(int l, NDArray y) {
                    return !mlp && l == layer ? nudged(y) : y;
                }

                @Override
                public NDArray mlpBlockOutput(int l, NDArray y) {
                    return mlp && l == layer ? nudged(y) : y;
                }

                private NDArray nudged(NDArray y) {
                    double[] delta = new double[(int) y.size()];
                    delta[(w * windows[0].length + t) * (int) y.getShape().get(2) + d] = eps;
                    return y.add(y.getManager().create(delta, y.getShape()));
                }
            };
            return Losses.entropy(model.forward(ids, nudge)).getDouble();
        }
    }
}
