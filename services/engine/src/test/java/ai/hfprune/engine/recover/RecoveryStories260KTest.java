package ai.hfprune.engine.recover;

import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.eval.Evaluator;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.recover.RecoveryOptions.Schedule;
import ai.hfprune.engine.recover.RecoveryResult.StopReason;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Recovery on a real model: stories260K with 20% of its MLP neurons removed (by weight magnitude), a seeded short
 * run lowers the KL to the dense model on held-out windows, and a learning rate that wrecks the model returns the
 * starting weights, so recovery never makes a model worse on the windows it is judged on.
 */
@ExtendWith(OneThread.class)
class RecoveryStories260KTest {

    private static final int SEQ = 32;
    private static Stories260KPruned s;
    private static int[][] train;
    private static int[][] heldOut;

    @BeforeAll
    static void setUp() {
        s = new Stories260KPruned(Criterion.MAGNITUDE, 0.2, 0, SEQ);
        int[][] calibration = s.trainWindows(64 + 8, SEQ);
        train = Stories260KPruned.head(calibration, 64);
        heldOut = Stories260KPruned.tail(calibration, 8);
    }

    @AfterAll
    static void tearDown() {
        s.close();
    }

    private static RecoveryOptions options(int steps, double lr, int rank) {
        return new RecoveryOptions(steps, lr, Schedule.CONSTANT, rank, 4, 10, 0, 3, 0);
    }

    @Test
    void fullFineTuningLowersTheHeldOutKl() {
        List<Integer> steps = new ArrayList<>();
        RecoveryResult r = Recovery.run(s.teacher, s.pruned.config(), s.pruned.weights(), train, heldOut,
                options(50, 5e-4, 0), new RecoveryListener() {
                    @Override
                    public void step(int step, int total, double loss) {
                        steps.add(step);
                        assertEquals(50, total);
                        assertTrue(Double.isFinite(loss) && loss > 0, "loss " + loss);
                    }
                });
        assertEquals(50, r.stepsRun());
        assertEquals(StopReason.COMPLETED, r.stopReason());
        assertEquals(50, steps.size());
        assertTrue(r.heldOutKlBefore() > 0.1, "pruning 20% of the MLP costs something: " + r.heldOutKlBefore());
        assertTrue(r.heldOutKlAfter() < 0.75 * r.heldOutKlBefore(),
                "held-out KL " + r.heldOutKlBefore() + " -> " + r.heldOutKlAfter());
        assertTrue(r.bestStep() > 0);
        assertSameLayout(s.pruned.weights(), r.weights());
        // the number early stopping used is the evaluator's fidelity of the model returned
        assertEquals(r.heldOutKlAfter(), heldOutKl(r.weights()), 1e-4);
        assertEquals(r.heldOutKlBefore(), heldOutKl(s.pruned.weights()), 1e-4);
        assertTrue(r.peakRssBytes() != 0);
    }

    @Test
    void loraLowersTheHeldOutKl() {
        RecoveryResult r = Recovery.run(s.teacher, s.pruned.config(), s.pruned.weights(), train, heldOut,
                options(40, 3e-3, 4), RecoveryListener.NONE);
        assertTrue(r.heldOutKlAfter() < 0.8 * r.heldOutKlBefore(),
                "held-out KL " + r.heldOutKlBefore() + " -> " + r.heldOutKlAfter());
        assertSameLayout(s.pruned.weights(), r.weights());
        assertEquals(r.heldOutKlAfter(), heldOutKl(r.weights()), 1e-4, "the merged model is the adapted one");
    }

    @Test
    void anAbsurdLearningRateReturnsTheStartingWeights() {
        List<Double> evaluations = new ArrayList<>();
        RecoveryResult r = Recovery.run(s.teacher, s.pruned.config(), s.pruned.weights(), train, heldOut,
                options(40, 10.0, 0).withPatience(2), new RecoveryListener() {
                    @Override
                    public void evaluated(int step, double kl, boolean best) {
                        evaluations.add(kl);
                        assertEquals(step == 0, best, "step " + step + ": " + kl);
                    }
                });
        assertTrue(evaluations.size() >= 2 && !(evaluations.get(1) <= evaluations.get(0)),
                "training did make the model worse, so early stopping had something to stop: " + evaluations);
        assertEquals(0, r.bestStep());
        assertSame(s.pruned.weights(), r.weights());
        assertEquals(r.heldOutKlBefore(), r.heldOutKlAfter());
        assertTrue(r.stepsRun() < 40, "stopped early: " + r.stopReason() + " after " + r.stepsRun());
    }

    /** A rate that wrecks the model at its first evaluation backs off by tenths, within the same budget of steps. */
    @Test
    void aRateTooHighBacksOffToOneThatHelps() {
        List<Double> rates = new ArrayList<>();
        List<Integer> steps = new ArrayList<>();
        RecoveryResult r = Recovery.run(s.teacher, s.pruned.config(), s.pruned.weights(), train, heldOut,
                options(60, 0.5, 0).withBackoffs(3), new RecoveryListener() {
                    @Override
                    public void step(int step, int total, double loss) {
                        steps.add(step);
                        assertEquals(60, total);
                    }

                    @Override
                    public void backedOff(int step, double lr) {
                        rates.add(lr);
                    }
                });
        assertTrue(!rates.isEmpty() && rates.size() <= 3, "backed off: " + rates);
        assertEquals(0.5 / Math.pow(10, rates.size()), r.learningRate(), 1e-12);
        assertEquals(rates.get(rates.size() - 1), r.learningRate(), 1e-12);
        assertTrue(r.heldOutKlAfter() < r.heldOutKlBefore(), r.heldOutKlBefore() + " -> " + r.heldOutKlAfter());
        assertTrue(r.bestStep() > 10 * rates.size(), "the best is the last attempt's: step " + r.bestStep());
        assertEquals(r.stepsRun(), steps.size());
        assertTrue(r.stepsRun() <= 60);
        for (int i = 0; i < steps.size(); i++) {
            assertEquals(i + 1, steps.get(i), "steps are counted across attempts");
        }
    }

    private static double heldOutKl(TensorSource weights) {
        try (LlamaModel m = LlamaModel.load(s.pruned.config(), weights, LlamaModel.defaultDevice(), DataType.FLOAT32)) {
            return Evaluator.fidelity(m, s.teacher, heldOut, 8).kl();
        }
    }

    private static void assertSameLayout(TensorSource expected, TensorSource actual) {
        assertEquals(expected.names(), actual.names());
        for (String name : expected.names()) {
            assertArrayEquals(expected.shape(name), actual.shape(name), name);
        }
    }
}
