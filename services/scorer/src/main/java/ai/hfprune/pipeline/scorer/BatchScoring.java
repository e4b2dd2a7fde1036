package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.importance.ScoringMemory;
import ai.hfprune.engine.importance.ScoringPrecision;
import ai.hfprune.engine.nn.LlamaModel;
import io.micrometer.core.instrument.Counter;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.slf4j.Logger;

import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Scores one record on the scoring thread: its validation's outcome, the forward pass (with statistics, into the open
 * group's accumulator), the retries of a batch whose scoring throws, and the dead letter of a batch that failed
 * {@value ScorerService#MAX_SCORING_ATTEMPTS} times or whose scores are not finite.
 */
final class BatchScoring {

    private static final Logger LOG = ScorerService.LOG;

    private final String instanceId;
    private final LlamaModel llama;
    private final ImportanceScorer scorer;
    private final int numLayers;
    /** prune.compensate=lstsq: Gram statistics are computed and sent with the scores. */
    private final boolean withStats;
    private final Counter failures;
    private final RetryLedger ledger;
    private final RetryBackoff backoff;
    private final AtomicLong scoringFailuresToInject = new AtomicLong();
    /** The open group's statistics, on the device (scoring thread only; null without statistics). */
    private GramAccumulator gram;

    BatchScoring(String instanceId, LlamaModel llama, ScoringMemory memory, ScoringPrecision precision, int numLayers,
                 boolean withStats, Counter failures, RetryLedger ledger, RetryBackoff backoff) {
        this.instanceId = instanceId;
        this.llama = llama;
        this.scorer = new ImportanceScorer(llama, memory, precision);
        this.numLayers = numLayers;
        this.withStats = withStats;
        this.failures = failures;
        this.ledger = ledger;
        this.backoff = backoff;
        this.gram = withStats ? new GramAccumulator(llama.manager(), numLayers) : null;
    }

    /** For tests: the next {@code n} attempts to score a valid batch throw, as a failing device would. */
    void failNext(long n) {
        scoringFailuresToInject.set(n);
    }

    /** Scores one record that {@code check} validated. */
    Outcome score(ConsumerRecord<byte[], byte[]> record, TokenBatchValidator.Result check) {
        long t0 = System.nanoTime();
        String attemptKey = RetryLedger.key(record);
        String deadReason = ledger.unsendable.get(attemptKey); // a transaction with it failed for good: only its dead letter goes
        boolean touched = false;
        TokenBatchValidator.Valid valid = null;
        Map<Criterion, Partial> scores = Map.of();
        if (deadReason != null) {
            // not scored again
        } else if (check instanceof TokenBatchValidator.Invalid invalid) {
            deadReason = invalid.reason();
        } else {
            valid = (TokenBatchValidator.Valid) check;
            if (!valid.criteria().isEmpty() && ledger.poisoned.containsKey(attemptKey)) {
                deadReason = ledger.poisoned.get(attemptKey);
            } else if (!valid.criteria().isEmpty()) {
                try {
                    if (scoringFailuresToInject.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                        throw new IllegalStateException("injected scoring failure"); // before the model: nothing touched
                    }
                    touched = withStats;
                    scores = scorer.score(valid.windows(), valid.criteria(), gram);
                    deadReason = nonFinite(scores);
                    if (deadReason != null) {
                        scores = Map.of();
                    }
                } catch (RuntimeException e) {
                    failures.increment();
                    int n = ledger.failed(attemptKey);
                    if (n < ScorerService.MAX_SCORING_ATTEMPTS) {
                        LOG.warn("scorer {}: scoring batch {} ({}) failed (attempt {} of {}): {}", instanceId,
                                valid.batch().getBatchId(), attemptKey, n, ScorerService.MAX_SCORING_ATTEMPTS, e.toString());
                        backoff.await(n);
                        return new Outcome(record, attemptKey, valid, Map.of(), null, t0, true, touched);
                    }
                    LOG.error("scorer {}: scoring batch {} ({}) failed {} times; dead-lettering it", instanceId,
                            valid.batch().getBatchId(), attemptKey, n, e);
                    deadReason = "scoring failed " + n + " times: " + e;
                    int giveUps = ledger.consecutiveGiveUps.incrementAndGet();
                    if (giveUps >= ScorerService.MAX_CONSECUTIVE_GIVE_UPS) {
                        throw new HfpruneException(giveUps + " batches in a row could not be scored; the last: " + e, e);
                    }
                }
            }
        }
        if (touched && deadReason != null) {
            ledger.poisoned.put(attemptKey, deadReason); // scored again after the group is dropped, it is dead-lettered at once
            return new Outcome(record, attemptKey, valid, Map.of(), deadReason, t0, false, true);
        }
        return new Outcome(record, attemptKey, valid, scores, deadReason, t0, false, false);
    }

    /** Why the scores cannot be published (the aggregator takes finite, non-negative sums only), or null. */
    private static String nonFinite(Map<Criterion, Partial> scores) {
        for (Partial p : scores.values()) {
            for (int l = 0; l < p.mlp().length; l++) {
                for (double[] v : new double[][] {p.mlp()[l], p.heads()[l]}) {
                    for (int i = 0; i < v.length; i++) {
                        if (!Double.isFinite(v[i]) || v[i] < 0) {
                            return p.criterion().id() + " scores of layer " + l + " are not finite and non-negative (" + v[i]
                                    + " at index " + i + ")";
                        }
                    }
                }
            }
        }
        return null;
    }

    /** The open group's statistics, taken out of the accumulator (which starts the next group empty). */
    GramStats drainStats() {
        return gram.drain();
    }

    /** Empties the statistics accumulator (the batches in it were dropped). */
    void discardStats() {
        if (gram != null) {
            gram.close();
            gram = new GramAccumulator(llama.manager(), numLayers);
        }
    }

    /** Releases the accumulator (the model stays the caller's). */
    void close() {
        if (gram != null) {
            gram.close();
        }
    }
}
