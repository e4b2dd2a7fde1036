package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.importance.Criterion;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.function.BooleanSupplier;

/**
 * On the scoring thread: scores the records of each poll ({@link BatchScoring}) and gathers their outcomes into
 * transaction groups, hands each closed group to the {@link TransactionCommitter}, and seeks the consumer back to what
 * must be scored again.
 *
 * <p>With statistics a group is a <i>stats group</i>: it takes batches, across polls, until
 * {@code scorer.stats.flush.tokens} tokens (or a poll finds nothing, a stop, a rebalance). A group holds one criteria
 * set and distinct batch ids. The accumulator always holds exactly the open group's batches: a batch whose scoring
 * failed after it may have touched the accumulator, or whose scores were not finite, drops the open group (it is sought
 * back to and scored again; such a batch is then dead-lettered without being scored), and whenever scored batches are
 * dropped (a failed transaction, a rebalance) the accumulator is emptied with them.
 */
final class GroupAssembler {

    private static final Logger LOG = ScorerService.LOG;

    private final String instanceId;
    private final ScorerClients clients;
    private final TokenBatchValidator validator;
    private final BatchScoring scoring;
    private final TransactionCommitter committer;
    private final RetryLedger ledger;
    /** prune.compensate=lstsq: Gram statistics are computed and sent with the scores. */
    private final boolean withStats;
    private final long flushTokens;
    private final long commitIntervalNanos;
    private final BooleanSupplier stopping;
    /** The open group, carried from one poll to the next (statistics only): its transaction has not begun. */
    private TransactionGroup carried;

    GroupAssembler(String instanceId, ScorerClients clients, TokenBatchValidator validator, BatchScoring scoring,
                   TransactionCommitter committer, RetryLedger ledger, boolean withStats, long flushTokens, long commitIntervalNanos,
                   BooleanSupplier stopping) {
        this.instanceId = instanceId;
        this.clients = clients;
        this.validator = validator;
        this.scoring = scoring;
        this.committer = committer;
        this.ledger = ledger;
        this.withStats = withStats;
        this.flushTokens = flushTokens;
        this.commitIntervalNanos = commitIntervalNanos;
        this.stopping = stopping;
    }

    /**
     * Scores the records of one poll in order and commits them in groups, one transaction per group. Without statistics
     * a group closes once {@code scorer.commit.interval.ms} has passed since its first record began scoring, at the end
     * of the poll, on a stop, or before a record that must be retried. With statistics it closes at
     * {@code scorer.stats.flush.tokens} tokens, before a batch it cannot take ({@link TransactionGroup#accepts}), before
     * a retry, on a stop, or when a poll brings nothing; otherwise it is carried to the next poll. A closed group's transaction
     * commits on the committer thread while the scoring thread goes on with the next records. A group whose transaction
     * fails is sought back to, with every record after it (whatever was scored meanwhile is dropped): the next poll
     * returns them again. The last transaction is awaited before returning, so the consumer is only polled with no
     * transaction in flight.
     */
    void scoreAndCommit(List<ConsumerRecord<byte[], byte[]>> records) {
        Future<Boolean> inFlight = null;
        TransactionGroup inFlightGroup = null;
        TransactionGroup group = carried != null ? carried : new TransactionGroup(0);
        carried = null;
        int retryFrom = -1;
        for (int i = 0; i < records.size() && !stopping.getAsBoolean(); i++) { // records not started are left for the group
            ConsumerRecord<byte[], byte[]> record = records.get(i);
            TokenBatchValidator.Result check = validator.check(record.value());
            boolean isolated = ledger.alone.contains(RetryLedger.key(record));
            if ((withStats && !group.accepts(check)) || (isolated && !group.isEmpty())) { // an isolated batch goes alone
                if (inFlight != null && !await(inFlight)) {
                    dropFrom(inFlightGroup, records);
                    return;
                }
                inFlight = submit(group);
                inFlightGroup = group;
                group = new TransactionGroup(i);
            }
            Outcome outcome = scoring.score(record, check);
            if (outcome.tainted()) {
                // the accumulator may hold part of this batch: the open group's statistics are unusable, so the
                // group is dropped and scored again from its first record
                scoring.discardStats();
                if (inFlight != null && !await(inFlight)) {
                    dropFrom(inFlightGroup, records);
                    return;
                }
                seekBack(group.records, records, i);
                return;
            }
            if (outcome.retry()) {
                retryFrom = i;
                break;
            }
            if (group.isEmpty()) {
                group = new TransactionGroup(i);
            }
            group.add(outcome);
            boolean due = isolated || (withStats ? group.tokens >= flushTokens
                    : System.nanoTime() - group.outcomes.get(0).startNanos() >= commitIntervalNanos);
            if (due && i < records.size() - 1) {
                if (inFlight != null && !await(inFlight)) {
                    dropFrom(inFlightGroup, records);
                    return;
                }
                inFlight = submit(group);
                inFlightGroup = group;
                group = new TransactionGroup(i + 1);
            }
        }
        if (inFlight != null && !await(inFlight)) {
            dropFrom(inFlightGroup, records);
            return;
        }
        if (withStats && retryFrom < 0 && !stopping.getAsBoolean() && !records.isEmpty() && !group.isEmpty() && group.tokens < flushTokens
                && group.records.stream().noneMatch(r -> ledger.alone.contains(RetryLedger.key(r)))) {
            carried = group; // the poll was not idle: more batches may join the group
            return;
        }
        if (!group.isEmpty() && !await(submit(group))) {
            seekBack(group.records, records, group.pollFrom);
            return;
        }
        if (retryFrom >= 0) {
            seekBack(List.of(), records, retryFrom);
        }
    }

    /** A failed transaction: its group and everything scored after it are dropped and sought back to. */
    private void dropFrom(TransactionGroup failed, List<ConsumerRecord<byte[], byte[]>> records) {
        scoring.discardStats(); // the open group's statistics go with it
        seekBack(failed.records, records, failed.pollFrom);
    }

    /** Drops the open group when a rebalance takes partitions of it ({@link #dropCarried}). */
    ConsumerRebalanceListener rebalanceListener() {
        return new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                dropCarried(partitions);
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            }

            @Override
            public void onPartitionsLost(Collection<TopicPartition> partitions) {
                dropCarried(partitions);
            }
        };
    }

    /** A rebalance takes partitions away: an open group with records of them cannot be committed and is dropped. */
    private void dropCarried(Collection<TopicPartition> gone) {
        TransactionGroup open = carried;
        if (open == null || open.records.stream().noneMatch(r -> gone.contains(new TopicPartition(r.topic(), r.partition())))) {
            return;
        }
        carried = null;
        scoring.discardStats();
        LOG.info("scorer {}: a rebalance took partitions of the open group; its {} record(s) are left to their next owner", instanceId,
                open.records.size());
        List<ConsumerRecord<byte[], byte[]>> kept = open.records.stream()
                .filter(r -> !gone.contains(new TopicPartition(r.topic(), r.partition()))).toList();
        seekBack(kept, List.of(), 0); // partitions this scorer keeps are rewound to the group's records
    }

    /** Woken from a poll by a stop: commits the open group. */
    void commitCarried() {
        if (carried != null) {
            TransactionGroup last = carried;
            carried = null;
            await(submit(last));
        }
    }

    /** Hands a group of outcomes, with its statistics (taken from the accumulator here, on the scoring thread), to the committer thread. */
    private Future<Boolean> submit(TransactionGroup group) {
        ConsumerGroupMetadata metadata = clients.consumer().groupMetadata(); // read on the consumer's thread
        GramStats stats = withStats && !group.batchIds.isEmpty() ? scoring.drainStats() : null;
        List<Outcome> outcomes = List.copyOf(group.outcomes);
        List<String> batchIds = List.copyOf(group.batchIds);
        Set<Criterion> criteria = group.criteria;
        return committer.submit(outcomes, stats, batchIds, criteria, metadata);
    }

    /** The result of a transaction; its unchecked exceptions (fenced, fatal, crash for a test) are rethrown as they are. */
    private static boolean await(Future<Boolean> transaction) {
        try {
            return transaction.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while a transaction was committing", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            if (e.getCause() instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException(e.getCause());
        }
    }

    /**
     * Rewinds every partition to its first record not committed, so the next poll returns it again: the earliest of
     * {@code earlier} (a group's records, possibly of earlier polls) and of the poll's records from {@code from} on.
     */
    private void seekBack(List<ConsumerRecord<byte[], byte[]>> earlier, List<ConsumerRecord<byte[], byte[]>> records, int from) {
        Map<TopicPartition, Long> first = new LinkedHashMap<>();
        List<ConsumerRecord<byte[], byte[]>> all = new ArrayList<>(earlier);
        all.addAll(records.subList(Math.min(from, records.size()), records.size()));
        for (ConsumerRecord<byte[], byte[]> r : all) {
            first.merge(new TopicPartition(r.topic(), r.partition()), r.offset(), Math::min);
        }
        KafkaConsumer<byte[], byte[]> consumer = clients.consumer();
        var assigned = consumer.assignment();
        first.forEach((tp, offset) -> {
            if (assigned.contains(tp)) {
                consumer.seek(tp, offset);
            }
        });
    }
}
