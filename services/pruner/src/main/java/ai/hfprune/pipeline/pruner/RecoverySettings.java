package ai.hfprune.pipeline.pruner;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.recover.RecoveryOptions;
import ai.hfprune.pipeline.common.PipelineConfig;

/**
 * The pruner's {@code prune.recover.*} settings, parsed and checked when the pruner is made (a typo fails the service
 * at start, not the first version after the whole calibration), with the same defaults as {@code prune --recover-*}.
 *
 * @param trainWindows   the most training windows
 * @param heldOutWindows the most held-out windows
 */
record RecoverySettings(RecoveryOptions options, int trainWindows, int heldOutWindows, long readTimeoutMillis) {

    static RecoverySettings of(PipelineConfig config) {
        int steps = config.getInt("prune.recover.steps");
        int rank = config.getInt("prune.recover.lora.rank");
        int train = config.getInt("prune.recover.windows");
        int heldOut = config.getInt("prune.recover.held.out");
        long timeout = config.getLong("pruner.recover.read.timeout.ms");
        if (steps < 0 || rank < 0) {
            throw new HfpruneException("settings prune.recover.steps and prune.recover.lora.rank must be 0 or positive, got "
                    + steps + " and " + rank);
        }
        if (train < 1 || heldOut < 1 || timeout < 1) {
            throw new HfpruneException("settings prune.recover.windows, prune.recover.held.out and pruner.recover.read.timeout.ms"
                    + " must be at least 1, got " + train + ", " + heldOut + " and " + timeout);
        }
        try {
            Double lr = config.get("prune.recover.lr").isBlank() ? null : config.getDouble("prune.recover.lr");
            return new RecoverySettings(RecoveryOptions.of(steps, rank, lr), train, heldOut, timeout);
        } catch (IllegalArgumentException e) {
            throw new HfpruneException("setting prune.recover.lr: " + e.getMessage(), e);
        }
    }

    boolean enabled() {
        return options.steps() > 0;
    }

    /**
     * How many of {@code available} windows train and how many are held out: the settings' numbers when the stream has
     * them all; otherwise both scaled down in the same proportion, at least one of each (a continuous run's first versions
     * come after a few thousand tokens, long before a full recovery budget has streamed by).
     */
    int[] split(int available) {
        int wanted = trainWindows + heldOutWindows;
        if (available >= wanted) {
            return new int[] {trainWindows, heldOutWindows};
        }
        if (available < 2) {
            throw new HfpruneException("recovery needs at least 2 calibration windows (one to train on, one held out), the"
                    + " calibration stream has " + available);
        }
        int heldOut = Math.max(1, (int) Math.round((double) available * heldOutWindows / wanted));
        return new int[] {available - heldOut, heldOut};
    }
}
