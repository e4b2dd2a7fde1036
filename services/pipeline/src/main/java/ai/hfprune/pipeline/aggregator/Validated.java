package ai.hfprune.pipeline.aggregator;

import ai.hfprune.schemas.ImportancePartial;

/** A partial that passed validation, or the raw bytes of one that did not, with the reason. */
sealed interface Validated {

    record Valid(ImportancePartial partial) implements Validated {
    }

    record Invalid(byte[] value, String reason) implements Validated {
    }
}
