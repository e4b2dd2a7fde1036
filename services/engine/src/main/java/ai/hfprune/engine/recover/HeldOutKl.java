package ai.hfprune.engine.recover;

import ai.hfprune.engine.nn.TokenArrays;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import java.util.Arrays;

/**
 * The early-stopping signal: mean KL(teacher ‖ student) per position over held-out windows, by forward passes only
 * (no collector, so no graph is kept). It is {@link DistillationLoss} averaged over all held-out positions, the same
 * number {@code Evaluator}'s {@code fidelity().kl()} reports for the exported model.
 */
final class HeldOutKl {
    private HeldOutKl() {
    }

    static double of(TeacherTargets heldOut, Adaptation student, int batchWindows) {
        double klSum = 0;
        long positions = 0;
        for (int start = 0; start < heldOut.size(); start += batchWindows) {
            int[] indices = range(start, Math.min(heldOut.size(), start + batchWindows));
            try (NDManager batch = student.model().manager().newSubManager()) {
                int[][] windows = heldOut.windows(indices);
                NDArray studentLogits = student.logits(TokenArrays.ids(batch, windows));
                NDArray teacherLogits = heldOut.logits(batch, indices);
                long n = (long) windows.length * windows[0].length;
                klSum += TokenArrays.scalar(DistillationLoss.of(studentLogits, teacherLogits)) * n;
                positions += n;
            }
        }
        return klSum / positions;
    }

    static int[] range(int from, int to) {
        int[] r = new int[to - from];
        Arrays.setAll(r, i -> from + i);
        return r;
    }
}
