package ai.hfprune.pipeline.aggregator;

import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.StatsPartial;

/**
 * A record that passed validation (a partial or a stats chunk), or the raw bytes of one that did not, with the reason;
 * or the notice that a chunk of a stats group was dead-lettered.
 */
sealed interface Validated {

    record Valid(ImportancePartial partial) implements Validated {
    }

    record ValidChunk(StatsPartial chunk) implements Validated {
    }

    record Invalid(byte[] value, String reason) implements Validated {
    }

    /** A chunk of group {@code groupId} went to the dead-letter topic: the group can never be complete. */
    record LostChunk(ModelId model, String groupId, String reason) implements Validated {
    }
}
