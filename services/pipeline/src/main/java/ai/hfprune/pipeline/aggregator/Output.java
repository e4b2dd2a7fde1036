package ai.hfprune.pipeline.aggregator;

import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.PruneTrigger;

/** What the aggregation emits: a coverage snapshot after every complete batch, and a trigger at a threshold. */
sealed interface Output {

    record Snapshot(CoverageSnapshot snapshot) implements Output {
    }

    record Trigger(PruneTrigger trigger) implements Output {
    }
}
