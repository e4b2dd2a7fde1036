package ai.hfprune.pipeline.aggregator;

import ai.hfprune.pipeline.common.DeadLetters;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.StatsPartial;
import io.micrometer.core.instrument.Counter;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;

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

    /**
     * Forwards {@code record} as {@link Invalid}, its reason and origin in dead-letter headers, and counts it: the one
     * way both validators turn a bad record into a dead letter.
     */
    static void forwardInvalid(ProcessorContext<String, Validated> context, Record<String, byte[]> record, String reason,
                               Counter deadLetters) {
        RecordMetadata origin = context.recordMetadata().orElseThrow();
        DeadLetters.headers(reason, origin.topic(), origin.partition(), origin.offset(), "aggregator").forEach(record.headers()::add);
        deadLetters.increment();
        byte[] value = DeadLetters.carried(record.key() == null ? null : record.key().getBytes(java.nio.charset.StandardCharsets.UTF_8),
                record.value(), record.headers(), DeadLetters.MAX_CARRIED_BYTES);
        context.forward(record.withValue(new Invalid(value, reason)));
    }

    /** A chunk of group {@code groupId} went to the dead-letter topic: the group can never be complete. */
    record LostChunk(ModelId model, String groupId, String reason) implements Validated {
    }
}
