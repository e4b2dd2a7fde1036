package ai.hfprune.engine.recover;

import ai.hfprune.engine.nn.TokenArrays;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import ai.djl.training.optimizer.Optimizer;
import ai.hfprune.engine.nn.GradientLock;

import java.util.Map;

/**
 * One optimizer step of self-distillation: the teacher's log-probabilities (cached, or a plain forward pass outside
 * the collector: the teacher keeps no graph and takes no gradient), the student's forward and backward pass under a
 * collector, then Adam on every trainable array. All intermediates of the step live in a sub-manager closed at its
 * end.
 */
final class DistillationTrainer {

    private final TeacherTargets teacher;
    private final Adaptation student;
    private final Optimizer optimizer;

    DistillationTrainer(TeacherTargets teacher, Adaptation student, Optimizer optimizer) {
        this.teacher = teacher;
        this.student = student;
        this.optimizer = optimizer;
    }

    /** Trains on the teacher's windows at {@code batch} and returns their loss (before the update). */
    double step(int[] batch) {
        // the lock covers the gradients' whole life: from the backward pass until Adam has zeroed them
        synchronized (GradientLock.LOCK) {
            double loss = backward(batch);
            update();
            return loss;
        }
    }

    /**
     * The loss of one batch, leaving its gradient in every trainable array's gradient (for {@link #update} or a
     * gradient check); the caller holds {@link GradientLock#LOCK} until the gradients are used and zeroed.
     */
    double backward(int[] batch) {
        try (NDManager studentBatch = student.model().manager().newSubManager()) {
            NDArray teacherLogits = teacher.logits(studentBatch, batch);
            NDArray studentIds = TokenArrays.ids(studentBatch, teacher.windows(batch));
            synchronized (GradientLock.LOCK) {
                try (GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector()) {
                    NDArray loss = DistillationLoss.of(student.logits(studentIds), teacherLogits);
                    JniUtils.backward((PtNDArray) loss, (PtNDArray) loss.onesLike(), false, false);
                    return TokenArrays.scalar(loss);
                }
            }
        }
    }

    /**
     * DJL's update changes each weight in place and zeroes its gradient. {@code getGradient()} wraps the gradient in
     * a new array attached to the weight's (long-lived) manager, so each wrapper is closed here; the gradient itself
     * stays with the weight.
     */
    void update() {
        for (Map.Entry<String, NDArray> p : student.parameters().entrySet()) {
            try (NDArray gradient = p.getValue().getGradient()) {
                optimizer.update(p.getKey(), p.getValue(), gradient);
            }
        }
    }
}
