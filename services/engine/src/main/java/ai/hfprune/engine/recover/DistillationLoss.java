package ai.hfprune.engine.recover;

import ai.djl.ndarray.NDArray;

/**
 * The self-distillation objective: the mean over every position of every window of KL(teacher ‖ student) between the
 * two next-token distributions, Σ_v p_t(v)·(log p_t(v) − log p_s(v)), in nats. It is the metric the evaluator reports
 * as fidelity ({@code Fidelity.kl()}), so training lowers exactly what is measured.
 *
 * <p>The teacher is a constant: its log-probabilities are cut from any graph, and only the student's logits carry a
 * gradient. The teacher's entropy term does not change the gradient but keeps the value a true KL (zero when the
 * student matches), which the held-out early stopping compares across steps.
 */
public final class DistillationLoss {
    private DistillationLoss() {
    }

    /**
     * @param studentLogits (batch, seq, vocab), its manager receives the result (DJL attaches a result to its first
     *                      operand's manager, so the student comes first in every operation)
     * @param teacherLogits (batch, seq, vocab) of the same inputs, same data type
     * @return a 0-d array: the mean KL per position
     */
    public static NDArray of(NDArray studentLogits, NDArray teacherLogits) {
        if (!studentLogits.getShape().equals(teacherLogits.getShape())) {
            throw new IllegalArgumentException("student logits " + studentLogits.getShape() + " and teacher logits "
                    + teacherLogits.getShape() + " differ in shape");
        }
        NDArray teacherLogp = teacherLogits.stopGradient().logSoftmax(-1);
        NDArray studentLogp = studentLogits.logSoftmax(-1);
        // Σ_v p_t (log p_s − log p_t) = −KL; neg() rather than mul(-1): no Java scalar enters the graph
        return studentLogp.sub(teacherLogp).mul(teacherLogp.exp()).sum(new int[] {-1}).mean().neg();
    }
}
