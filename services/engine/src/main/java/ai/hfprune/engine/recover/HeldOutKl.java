package ai.hfprune.engine.recover;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;

/**
 * The early-stopping signal: mean KL(teacher ‖ student) per position over held-out windows, by forward passes only
 * (no collector, so no graph is kept). It is {@link DistillationLoss} averaged over all held-out positions, the same
 * number {@code Evaluator}'s {@code fidelity().kl()} reports for the exported model.
 */
final class HeldOutKl {
    private HeldOutKl() {
    }

    static double of(LlamaModel teacher, Adaptation student, int[][] windows, int batchWindows) {
        double klSum = 0;
        long positions = 0;
        for (int[][] batch : CalibrationData.batches(windows, batchWindows)) {
            try (NDManager teacherBatch = teacher.manager().newSubManager();
                 NDManager studentBatch = student.model().manager().newSubManager()) {
                NDArray teacherLogits = teacher.forward(TokenIds.of(teacherBatch, batch), ActivationTap.NONE);
                NDArray studentLogits = student.logits(TokenIds.of(studentBatch, batch));
                long n = (long) batch.length * batch[0].length;
                klSum += TokenIds.scalar(DistillationLoss.of(studentLogits, teacherLogits)) * n;
                positions += n;
            }
        }
        return klSum / positions;
    }
}
