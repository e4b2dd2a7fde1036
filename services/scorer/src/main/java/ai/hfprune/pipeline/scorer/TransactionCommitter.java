package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.pipeline.common.DeadLetters;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.Topics;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.FencedInstanceIdException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RecordBatchTooLargeException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.slf4j.Logger;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Commits groups of outcomes, each in one Kafka transaction with the offsets past its records, on a thread of its own
 * (one transaction at a time, in offset order): the partials or dead letters, the group's statistics, the offsets. A
 * failed transaction is aborted (or, when the abort fails, the producer replaced) and waited out; one that fails the
 * same way every time is split into transactions of one batch, and a batch alone is then dead-lettered without its
 * value. A fenced producer ({@link Fenced}), an error no retry mends and a test's crash are thrown to the scorer.
 */
final class TransactionCommitter {

    private static final Logger LOG = ScorerService.LOG;

    private final Topics topics;
    private final ModelInfo model;
    private final String instanceId;
    private final ScorerClients clients;
    private final StatsSender statsSender;
    private final ScorerMeters meters;
    private final RetryLedger ledger;
    private final RetryBackoff backoff;
    private final PartialsSender partialsSender;

    private final AtomicLong batchesScored = new AtomicLong();
    private final AtomicLong deadLettered = new AtomicLong();
    private final AtomicLong partialsCommitted = new AtomicLong();
    private volatile long crashAfterPartials = -1;
    private volatile long crashAfterStatsChunks = -1;
    private final AtomicLong transactionFailuresToInject = new AtomicLong();
    /** Runs the transactions, one at a time, beside the scoring thread. */
    private ExecutorService committer;

    TransactionCommitter(Topics topics, ModelInfo model, String instanceId, ScorerClients clients, StatsSender statsSender,
                         ScorerMeters meters, RetryLedger ledger, RetryBackoff backoff) {
        this.topics = topics;
        this.model = model;
        this.instanceId = instanceId;
        this.clients = clients;
        this.statsSender = statsSender;
        this.meters = meters;
        this.ledger = ledger;
        this.backoff = backoff;
        this.partialsSender = new PartialsSender(topics, model, instanceId);
    }

    /** Starts the committer thread. */
    void start() {
        committer = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "hfprune-scorer-" + instanceId + "-commit");
            t.setDaemon(true);
            return t;
        });
    }

    /** Stops the committer thread (idle by then: every transaction was awaited). */
    void shutdownNow() {
        if (committer != null) {
            committer.shutdownNow();
        }
    }

    /** Commits a group on the committer thread; the future's value is {@link #commit}'s. */
    Future<Boolean> submit(List<Outcome> outcomes, GramStats stats, List<String> batchIds, Set<Criterion> criteria,
                           ConsumerGroupMetadata metadata) {
        return committer.submit(() -> commit(outcomes, stats, batchIds, criteria, metadata));
    }

    void crashAfterPartials(long n) {
        crashAfterPartials = n;
    }

    void crashAfterStatsChunks(long n) {
        crashAfterStatsChunks = n;
    }

    void failNext(long n) {
        transactionFailuresToInject.set(n);
    }

    long batchesScored() {
        return batchesScored.get();
    }

    long deadLettered() {
        return deadLettered.get();
    }

    long partialsCommitted() {
        return partialsCommitted.get();
    }

    /** Partials sent, in committed transactions or not. */
    long partialsSent() {
        return partialsSender.partialsSent();
    }

    /**
     * Commits a group of outcomes, with the offsets past their records, in one transaction (on the committer thread).
     *
     * @return true when committed; false when the group must be retried (aborted; the backoff has been waited)
     */
    private boolean commit(List<Outcome> group, GramStats stats, List<String> batchIds, Set<Criterion> criteria,
                           ConsumerGroupMetadata metadata) {
        Outcome first = group.get(0);
        int[] sent = new int[group.size()];
        String statsGroup = stats == null ? "" : StatsSender.groupId(model, batchIds);
        long statsBytes = 0;
        try {
            clients.producer().beginTransaction();
            Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
            for (int i = 0; i < group.size(); i++) {
                sent[i] = send(group.get(i), statsGroup);
                ConsumerRecord<byte[], byte[]> record = group.get(i).record();
                offsets.put(new TopicPartition(record.topic(), record.partition()), new OffsetAndMetadata(record.offset() + 1));
            }
            if (stats != null) {
                statsBytes = statsSender.send(clients.producer(), statsGroup, batchIds, criteria, stats, n -> {
                    long crashAt = crashAfterStatsChunks;
                    if (crashAt >= 0 && n >= crashAt) {
                        crashNow();
                    }
                });
            }
            clients.producer().sendOffsetsToTransaction(offsets, metadata);
            if (transactionFailuresToInject.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                throw new KafkaException("injected transaction failure");
            }
            clients.producer().commitTransaction();
            meters.transactions().increment();
        } catch (CrashedForTest e) {
            throw e;
        } catch (KafkaException e) {
            if (fenced(e)) {
                throw new Fenced(e);
            }
            if (fatal(e)) {
                throw e;
            }
            meters.failures().increment();
            if (unfixable(e)) {
                abortOrReset();
                isolateOrGiveUp(group, e);
                return false; // retried at once: no wait mends it
            }
            int n = ledger.failed(first.attemptKey());
            LOG.warn("scorer {}: transaction for {} batch(es) from {} failed (attempt {}): {}; aborting and retrying", instanceId,
                    group.size(), first.attemptKey(), n, e.toString());
            abortOrReset();
            backoff.await(n);
            return false;
        }
        for (int i = 0; i < group.size(); i++) {
            committed(group.get(i), sent[i]);
        }
        if (stats != null) {
            statsSender.committed(statsBytes);
        }
        return true;
    }

    /**
     * A transaction failed for a reason no retry mends (a record the broker refuses): of a group of several batches,
     * each is retried in a transaction of its own, to find the one; a batch alone is dead-lettered without its value.
     */
    private void isolateOrGiveUp(List<Outcome> group, KafkaException e) {
        if (group.size() > 1) {
            group.forEach(o -> ledger.alone.add(o.attemptKey()));
            LOG.warn("scorer {}: transaction for {} batches from {} failed for good ({}); retrying each alone", instanceId,
                    group.size(), group.get(0).attemptKey(), e.toString());
            return;
        }
        String key = group.get(0).attemptKey();
        String reason = "its transaction failed for a reason no retry mends: " + e;
        ledger.unsendable.put(key, reason);
        LOG.error("scorer {}: {} {}; dead-lettering it without its value", instanceId, key, reason, e);
    }

    /** Failures of a transaction that fail the same way every time: the broker refuses a record. */
    static boolean unfixable(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof RecordTooLargeException || t instanceof RecordBatchTooLargeException
                    || t instanceof InvalidRecordException || t instanceof SerializationException) {
                return true;
            }
        }
        return false;
    }

    /** Sends one outcome's partials (or its dead letter) into the open transaction; returns the partials sent. */
    private int send(Outcome o, String statsGroup) {
        ConsumerRecord<byte[], byte[]> record = o.record();
        if (o.deadReason() != null) {
            clients.producer().send(DeadLetters.of(topics.deadLetters.name(), record, o.deadReason(), "scorer",
                    ledger.unsendable.containsKey(o.attemptKey()) ? -1 : DeadLetters.MAX_CARRIED_BYTES));
            return 0;
        }
        return partialsSender.send(clients.producer(), o.valid(), o.scores(), statsGroup, n -> {
            long crashAt = crashAfterPartials;
            if (crashAt >= 0 && n >= crashAt) {
                crashNow();
            }
        });
    }

    /** Bookkeeping and meters once an outcome's transaction has committed. */
    private void committed(Outcome o, int partialsSent) {
        ledger.committed(o.attemptKey());
        if (o.deadReason() != null) {
            meters.deadLetters().increment();
            deadLettered.incrementAndGet();
            LOG.warn("scorer {}: dead letter {}: {}", instanceId, o.attemptKey(), o.deadReason());
        } else if (!o.scores().isEmpty()) {
            ledger.consecutiveGiveUps.set(0);
            meters.partials().increment(partialsSent);
            partialsCommitted.addAndGet(partialsSent);
            int[][] windows = o.valid().windows();
            meters.tokens().increment((double) windows.length * windows[0].length);
            batchesScored.incrementAndGet();
            meters.batchSeconds().record(System.nanoTime() - o.startNanos(), TimeUnit.NANOSECONDS);
        }
    }

    /** A test's crash: what was sent is in the log, inside the open transaction, which is neither committed nor aborted. */
    private void crashNow() {
        clients.closeAsIfKilled();
        throw new CrashedForTest();
    }

    private void abortOrReset() {
        try {
            clients.producer().abortTransaction();
        } catch (KafkaException e) {
            if (fenced(e)) {
                throw new Fenced(e);
            }
            if (fatal(e)) {
                throw e;
            }
            LOG.warn("scorer {}: abort failed ({}); starting a new producer", instanceId, e.toString());
            clients.resetProducer();
        }
    }

    /** Another producer took over our transactional id: this instance must go (and must not take the id back). */
    static boolean fenced(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ProducerFencedException || t instanceof InvalidProducerEpochException
                    || t instanceof FencedInstanceIdException) {
                return true;
            }
        }
        return false;
    }

    /** Errors that no retry mends. */
    static boolean fatal(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof AuthorizationException || t instanceof UnsupportedVersionException) {
                return true;
            }
        }
        return false;
    }

    /** The producer was fenced: another instance took over the transactional id. */
    static final class Fenced extends RuntimeException {
        Fenced(Throwable cause) {
            super(cause);
        }
    }

    /** A test's crash point fired (see {@link ScorerService#crashAfterPartialsForTest}). */
    static final class CrashedForTest extends RuntimeException {
        CrashedForTest() {
            super("crashed for a test", null, false, false);
        }
    }
}
