package ai.hfprune.pipeline.aggregator;

import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.StatsPartial;

/** What reaches the aggregation of a model|criterion: a validated partial, a validated stats chunk, or a lost chunk's notice. */
sealed interface Arrival {

    record Partial(ImportancePartial partial) implements Arrival {
    }

    record Chunk(StatsPartial chunk) implements Arrival {
    }

    /** A chunk of {@code groupId} was dead-lettered. */
    record Lost(ModelId model, String groupId, String reason) implements Arrival {
    }
}
