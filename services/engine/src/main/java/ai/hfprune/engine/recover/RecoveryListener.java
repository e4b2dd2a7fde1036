package ai.hfprune.engine.recover;

/** Progress of {@link Recovery#run}, called on the thread that runs it: for a progress bar and pipeline metrics. */
public interface RecoveryListener {

    RecoveryListener NONE = new RecoveryListener() {
    };

    /** After each optimizer step: {@code step} of {@code steps} (1-based), the batch's distillation loss before it. */
    default void step(int step, int steps, double loss) {
    }

    /**
     * After each held-out evaluation, step 0 being the starting weights.
     *
     * @param heldOutKl mean KL(teacher ‖ student) per position over the held-out windows, nats
     * @param best      whether these weights are the best so far (and so what recovery returns unless beaten)
     */
    default void evaluated(int step, double heldOutKl, boolean best) {
    }

    /** After {@code step} steps no evaluation beat the start: training begins again from it at {@code learningRate}. */
    default void backedOff(int step, double learningRate) {
    }
}
