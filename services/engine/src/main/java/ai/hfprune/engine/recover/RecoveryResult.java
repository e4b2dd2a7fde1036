package ai.hfprune.engine.recover;

import ai.hfprune.engine.io.TensorSource;

/**
 * What {@link Recovery#run} returns.
 *
 * @param weights         the best weights seen on the held-out windows, a plain model with the input's tensor names
 *                        and shapes; the input itself when no step beat it ({@code bestStep == 0})
 * @param heldOutKlBefore mean KL(teacher ‖ pruned) per held-out position before training, nats
 * @param heldOutKlAfter  the same for {@code weights}: never above {@code heldOutKlBefore}
 * @param stepsRun        optimizer steps taken (fewer than asked when stopped early)
 * @param bestStep        the step whose weights are returned, 0 for the input
 * @param learningRate    the peak learning rate of the training that made {@code weights}: the one asked for, or a
 *                        tenth or a hundredth of it after back-offs
 * @param rssBeforeBytes  the process's resident memory when recovery started; −1 without /proc
 * @param peakRssBytes    the process's peak resident memory while recovery ran (the peak is reset at the start),
 *                        or the peak since the process started where Linux does not allow the reset; −1 without /proc.
 *                        Both count the whole process (JVM, PyTorch, the teacher): recovery's own cost is the difference
 */
public record RecoveryResult(TensorSource weights, double heldOutKlBefore, double heldOutKlAfter, int stepsRun,
                             int bestStep, StopReason stopReason, double learningRate, long rssBeforeBytes,
                             long peakRssBytes) {

    public enum StopReason {
        /** every step asked for was run */
        COMPLETED,
        /** {@code patience} evaluations in a row did not beat the best held-out KL */
        NO_IMPROVEMENT,
        /** the training loss became NaN or infinite: the weights after it are useless */
        DIVERGED
    }
}
