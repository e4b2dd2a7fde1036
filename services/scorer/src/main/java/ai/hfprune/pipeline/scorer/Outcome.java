package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Partial;
import org.apache.kafka.clients.consumer.ConsumerRecord;

import java.util.Map;

/**
 * What scoring one record gave: its partials, or why it goes to the dead-letter topic; or that it must be retried
 * (the backoff has been waited already). {@code tainted}: the attempt may have left part of the batch in the
 * statistics accumulator.
 */
record Outcome(ConsumerRecord<byte[], byte[]> record, String attemptKey, TokenBatchValidator.Valid valid,
               Map<Criterion, Partial> scores, String deadReason, long startNanos, boolean retry, boolean tainted) {
}
