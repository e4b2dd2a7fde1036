package ai.hfprune.engine.nn;

/**
 * PyTorch allows one active {@code GradientCollector} per JVM: scoring (probe gradients) and recovery (weight
 * gradients) take turns on this lock, so scorers and a pruner may share one process.
 */
public final class GradientLock {
    private GradientLock() {
    }

    public static final Object LOCK = new Object();
}
