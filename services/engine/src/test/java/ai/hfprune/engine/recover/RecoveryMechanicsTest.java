package ai.hfprune.engine.recover;

import ai.djl.ndarray.NDArray;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.hfprune.engine.nn.GradientLock;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What recovery relies on DJL for, checked rather than assumed: Adam changes the model's own arrays in place by the
 * Adam formula and zeroes their gradients (PyTorch would otherwise add the next step's gradient to this one's), and
 * a training step leaves no array behind in any manager.
 */
@ExtendWith(OneThread.class)
class RecoveryMechanicsTest {

    private static final String NAME = "model.layers.0.mlp.up_proj.weight";

    @Test
    void adamUpdatesTheModelsArraysInPlaceAndZeroesTheirGradients() {
        float lr = 0.01f;
        try (TinyDistillation tiny = new TinyDistillation("Qwen2ForCausalLM", 3); Adaptation student = tiny.adaptation(0);
             ClosableAdam adam = new ClosableAdam(Optimizer.adam().optLearningRateTracker(Tracker.fixed(lr)))) {
            NDArray p = student.parameters().get(NAME);
            assertSame(student.model().layers().get(0).upProj(), p, "the optimizer sees the forward pass's array");
            TeacherTargets targets = tiny.live(TinyDistillation.windows(37, 2, 6, 1));
            DistillationTrainer trainer = new DistillationTrainer(targets, student, adam);
            int[] batch = TinyDistillation.all(2);
            double before = HeldOutKl.of(targets, student, 2);
            synchronized (GradientLock.LOCK) {
                trainer.backward(batch);
                double[] g = gradient(p);
                double[] w0 = p.toDoubleArray();
                trainer.update();
                double[] w1 = p.toDoubleArray();
                assertTrue(Arrays.stream(g).anyMatch(x -> Math.abs(x) > 1e-6), "a gradient to check");
                // DJL 0.36 (Adam.update + the native adamUpdate), step t = 1, in its float32 constants
                float beta1 = 0.9f;
                float beta2 = 0.999f;
                float epsilon = 1e-8f;
                float correction = (float) (lr * Math.sqrt(1.0 - Math.pow(beta2, 1)) / (1.0 - Math.pow(beta1, 1)));
                for (int i = 0; i < g.length; i++) {
                    double m = (double) (1 - beta1) * g[i];
                    double v = (double) (1 - beta2) * g[i] * g[i];
                    double expected = w0[i] - m * correction / (Math.sqrt(v) + epsilon);
                    assertEquals(expected, w1[i], 1e-12, "element " + i);
                }
                assertTrue(Arrays.stream(gradient(p)).allMatch(x -> x == 0), "the gradient was zeroed");
            }
            assertNotEquals(before, HeldOutKl.of(targets, student, 2), "the forward pass sees the update");
            assertEquals(2 * student.parameters().size(), adam.stateArrays(), "a mean and a variance per parameter");
        }
    }

    @Test
    void withoutZeroingPyTorchWouldAccumulate() {
        try (TinyDistillation tiny = new TinyDistillation("Qwen3ForCausalLM", 3); Adaptation student = tiny.adaptation(0);
             ClosableAdam adam = new ClosableAdam(Optimizer.adam())) {
            DistillationTrainer trainer = new DistillationTrainer(tiny.live(TinyDistillation.windows(37, 2, 6, 2)), student, adam);
            int[] batch = TinyDistillation.all(2);
            NDArray p = student.parameters().get(NAME);
            synchronized (GradientLock.LOCK) {
                trainer.backward(batch);
                double[] once = gradient(p);
                trainer.backward(batch);
                double[] twice = gradient(p);
                for (int i = 0; i < once.length; i++) {
                    assertEquals(2 * once[i], twice[i], 1e-12 * Math.max(1, Math.abs(once[i])));
                }
                InPlace.zeroGradients(student);
            }
            // a full step: its gradients are gone before the next one starts
            trainer.step(batch);
            assertTrue(Arrays.stream(gradient(p)).allMatch(x -> x == 0));
        }
    }

    @Test
    void stepsLeaveNoArraysBehind() {
        for (int rank : new int[] {0, 2}) {
            for (long budget : new long[] {0, Long.MAX_VALUE}) { // the teacher per batch, or cached
                try (TinyDistillation tiny = new TinyDistillation("Qwen2ForCausalLM", 4); Adaptation student = tiny.adaptation(rank);
                     ClosableAdam adam = new ClosableAdam(Optimizer.adam());
                     TeacherTargets targets = TeacherTargets.of(tiny.teacher, TinyDistillation.windows(37, 5, 6, 3), 2, budget)) {
                    String what = "rank " + rank + (targets.isCached() ? ", cached" : ", live");
                    DistillationTrainer trainer = new DistillationTrainer(targets, student, adam);
                    TrainingBatches batches = new TrainingBatches(targets.size(), 2, 1);
                    trainer.step(batches.next()); // creates the optimizer state and the RoPE/mask caches
                    HeldOutKl.of(targets, student, 2);
                    student.export();
                    int studentArrays = student.model().manager().getManagedArrays().size();
                    int teacherArrays = tiny.teacher.manager().getManagedArrays().size();
                    int states = adam.stateArrays();
                    for (int i = 0; i < 10; i++) {
                        trainer.step(batches.next());
                        HeldOutKl.of(targets, student, 2);
                        student.export();
                    }
                    assertEquals(studentArrays, student.model().manager().getManagedArrays().size(), what);
                    assertEquals(teacherArrays, tiny.teacher.manager().getManagedArrays().size(), what);
                    assertEquals(states, adam.stateArrays(), what);
                    assertEquals(2 * student.parameters().size(), states, what);
                }
            }
        }
    }

    @Test
    void trainingBatchesVisitEveryWindowOncePerPass() {
        TrainingBatches batches = new TrainingBatches(7, 3, 42);
        int[] seen = new int[7];
        for (int b = 0; b < 7; b++) { // 21 windows: exactly three passes
            for (int w : batches.next()) {
                seen[w]++;
            }
        }
        assertArrayEquals(new int[] {3, 3, 3, 3, 3, 3, 3}, seen);
        assertArrayEquals(new TrainingBatches(7, 3, 42).next(), new TrainingBatches(7, 3, 42).next(), "seeded");
        assertNotEquals(Arrays.toString(new TrainingBatches(7, 7, 42).next()), Arrays.toString(HeldOutKl.range(0, 7)),
                "shuffled");
    }

    @Test
    void cosineScheduleWarmsUpThenDecaysToATenth() {
        Tracker t = RecoveryOptions.defaults(100).withLearningRate(1e-3).learningRateTracker(); // warm-up: 5 steps
        assertEquals(1e-4 + 0.9e-3 / 5, t.getNewValue(1), 1e-9, "DJL's Adam asks for t = 1 first");
        assertEquals(1e-3, t.getNewValue(5), 1e-9, "peak after the warm-up");
        assertEquals(1e-4 + 0.9e-3 * (1 + Math.cos(Math.PI * 50 / 95)) / 2, t.getNewValue(55), 1e-9);
        assertEquals(1e-4, t.getNewValue(100), 1e-9, "a tenth at the last step");
        Tracker constant = RecoveryOptions.defaults(100).withSchedule(RecoveryOptions.Schedule.CONSTANT)
                .learningRateTracker();
        assertEquals(1e-3, constant.getNewValue(1), 1e-9);
        assertEquals(1e-3, constant.getNewValue(100), 1e-9);
    }

    @Test
    void patienceIsAHundredStepsOrAFifthOfTheBudget() {
        assertEquals(4, RecoveryOptions.defaults(20).patience(), "100 steps at least");
        assertEquals(4, RecoveryOptions.defaults(500).patience(), "stories260K's 500 steps: 100 steps, as measured");
        assertEquals(12, RecoveryOptions.defaults(1500).patience(), "300 steps");
        assertEquals(24, RecoveryOptions.defaults(3000).patience(), "600 steps");
        assertEquals(13, RecoveryOptions.defaults(1510).patience(), "302 steps round up to 13 evaluations");
        assertEquals(24, RecoveryOptions.lora(3000, 4).patience(), "LoRA alike");
    }

    private static double[] gradient(NDArray p) {
        try (NDArray g = p.getGradient()) {
            return g.toDoubleArray();
        }
    }
}
