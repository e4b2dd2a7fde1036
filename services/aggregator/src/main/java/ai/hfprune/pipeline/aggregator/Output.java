package ai.hfprune.pipeline.aggregator;

import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneTrigger;
import ai.hfprune.schemas.StatsPartial;

/**
 * What the aggregation emits: a coverage snapshot after every fold, and at a threshold a trigger preceded by the
 * version's statistics, chunk by chunk.
 */
sealed interface Output {

    record Snapshot(CoverageSnapshot snapshot) implements Output {
    }

    record Trigger(PruneTrigger trigger) implements Output {
    }

    /** A version whose snapshot exceeds the record limit: no trigger, this FAILED result instead. */
    record Refused(PruneResult result) implements Output {
    }

    /** One chunk of a version's summed statistics, for calibration-stats under {@code key}. */
    record Stats(String key, StatsPartial chunk) implements Output {
    }
}
