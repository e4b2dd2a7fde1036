package ai.hfprune.pipeline.scorer;

import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.compensate.Compensation;
import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.pipeline.common.DeadLetters;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.ServiceBase;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.schemas.ImportancePartial;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A scorer: a member of the consumer group {@code <topic.prefix>scorers} that turns each {@link ai.hfprune.schemas.TokenBatch}
 * of {@link Topics#calibrationBatches} into {@link ImportancePartial}s on {@link Topics#importancePartials}: for every
 * criterion of the batch that this scorer is configured for ({@code criteria}; all of them from one forward pass),
 * every layer, one record per structure (MLP neurons, query heads), keyed {@link Keys#partial}.
 *
 * <p><b>Exactly once.</b> Batches are committed in Kafka transactions (transactional id
 * {@code <topic.prefix>scorer-<instance.id>}): a batch's partials (or its dead letter) and the consumer offset past it
 * are committed together, or none of them. One transaction takes the batches scored in
 * {@code scorer.commit.interval.ms} (and at most one poll's, {@value #MAX_POLL_RECORDS}): on a small model a batch
 * takes a tenth of a second, and a transaction per batch cost the broker more than the batch. Batches are scored
 * before their transaction begins, so a transaction stays open only for the sends. Transactions run on a second
 * thread, one at a time and in offset order, while the scoring thread scores the next batches: the round trips of a
 * commit then cost no scoring time. A crash loses at most the batches not yet committed and leaves at most an open
 * transaction, which the next producer with this transactional id aborts in {@code initTransactions()} (or the broker
 * after {@code transaction.timeout.ms}); {@code read_committed} readers never see its records. The
 * offsets go through the producer with the consumer's group metadata, so a scorer that lost its partitions in a
 * rebalance cannot commit them (KIP-447).
 *
 * <p><b>Failures.</b> A record that is not a usable TokenBatch (see {@link TokenBatchValidator}), or whose scores
 * are not finite, goes to {@link Topics#deadLetters} inside the same transaction, as it came (key and value bytes)
 * with {@link DeadLetters#headers}; the scorer carries on. A valid batch whose scoring throws, or a transaction that
 * fails, is aborted, the consumer is sought back to it and it is retried after an exponential backoff (1 s doubling
 * to 30 s by default). A batch whose scoring failed {@value #MAX_SCORING_ATTEMPTS} times is dead-lettered (so one
 * poisonous batch does not block its partition); if {@value #MAX_CONSECUTIVE_GIVE_UPS} batches in a row end so, the
 * device is assumed broken and this instance stops ({@link State#FAILED}). A fenced producer (another instance took
 * over the transactional id) stops this instance ({@link State#FENCED}).
 *
 * <p><b>Statistics.</b> With {@code prune.compensate=lstsq} the scorer also sums, in the same forward passes, the Gram
 * matrices of down_proj's and o_proj's inputs ({@link GramAccumulator}, on the device). Then a transaction is a
 * <i>stats group</i>: it takes batches, across polls, until {@code scorer.stats.flush.tokens} tokens (or a poll finds
 * nothing, a stop, a rebalance), and carries the batches' partials (each naming the group), the group's statistics once
 * ({@link StatsSender}: packed, chunked, for each criterion) and the offsets past the batches. Batches are scored before
 * the transaction begins (their partials wait in memory), so a transaction is open only for its sends. A group holds one
 * criteria set and distinct batch ids. The accumulator always holds exactly the open group's batches: a batch whose
 * scoring failed after it may have touched the accumulator, or whose scores were not finite, drops the open group (it is
 * sought back to and scored again; such a batch is then dead-lettered without being scored), and whenever scored batches
 * are dropped (a failed transaction, a rebalance) the accumulator is emptied with them. A crash loses the open group and
 * at most an open transaction, as above: statistics are never lost or counted twice.
 *
 * <p>Meters, all tagged {@code instance=<instance.id>}: {@code hfprune_scorer_tokens}, {@code hfprune_scorer_batch_seconds}
 * (with a percentile histogram), {@code hfprune_scorer_partials}, {@code hfprune_scorer_transactions}, {@code hfprune_scorer_failures},
 * {@code hfprune_dead_letters} ({@code service=scorer}); Kafka client metrics of both clients.
 */
public final class ScorerService extends ServiceBase {

    /** The lifecycle of an instance. */
    public enum State {
        NEW, STARTING, RUNNING,
        /** stopped by {@link #stop()} */
        STOPPED,
        /** another producer took over the transactional id */
        FENCED,
        /** an unrecoverable error, see {@link #failure()} */
        FAILED,
        /** {@link #crashAfterPartialsForTest} fired */
        CRASHED
    }

    public static final int MAX_SCORING_ATTEMPTS = 5;
    public static final int MAX_CONSECUTIVE_GIVE_UPS = 3;

    /** The scorer's logger; its parts log through it too, so that every log line of a scorer names this class. */
    static final Logger LOG = LoggerFactory.getLogger(ScorerService.class);
    private static final Duration POLL = Duration.ofMillis(500);
    private static final int MAX_POLL_RECORDS = 8;
    private static final int MAX_POLL_INTERVAL_MS = 30 * 60 * 1000;

    private final PipelineConfig config;
    private final Topics topics;
    private final ModelInfo model;
    private final String instanceId;
    private final LlamaModel llama;
    private final TokenBatchValidator validator;

    private final ScorerMeters meters;

    private volatile State state = State.NEW;
    private volatile boolean stopping;
    private final CountDownLatch terminated = new CountDownLatch(1);
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final RetryBackoff backoff = new RetryBackoff(() -> stopping = true);
    private final long commitIntervalNanos;

    private Thread thread;
    private final ScorerClients clients;
    private final RetryLedger ledger = new RetryLedger();
    /** prune.compensate=lstsq: Gram statistics are computed and sent with the scores. */
    private final boolean withStats;
    private final long flushTokens;
    private final BatchScoring scoring;
    private final TransactionCommitter committer;
    /** The open group, carried from one poll to the next (statistics only): its transaction has not begun. */
    private TransactionGroup carried;

    /**
     * Loads the model of {@code checkpoint} onto {@link LlamaModel#defaultDevice()}; the checkpoint stays the caller's
     * (it must stay open while the scorer runs: the model's identity comes from it).
     */
    public ScorerService(PipelineConfig config, Topics topics, Checkpoint checkpoint, MeterRegistry meters) {
        this.config = config;
        this.topics = topics;
        if (config.get("bootstrap.servers").isBlank()) {
            throw new HfpruneException("bootstrap.servers is not set");
        }
        EnumSet<Criterion> criteria = EnumSet.noneOf(Criterion.class);
        for (String c : config.get("criteria").split(",")) {
            if (!c.isBlank()) {
                criteria.add(Criterion.parse(c));
            }
        }
        if (criteria.isEmpty()) {
            throw new HfpruneException("no criteria given (criteria is empty)");
        }
        this.model = ModelInfo.of(checkpoint);
        this.instanceId = config.instanceId();
        this.commitIntervalNanos = TimeUnit.MILLISECONDS.toNanos(config.getLong("scorer.commit.interval.ms"));
        config.validate();
        this.withStats = Compensation.parse(config.compensation()).usesStats();
        this.flushTokens = config.statsFlushTokens();
        StatsSender statsSender = new StatsSender(topics, model, instanceId, config.statsChunkBytes(), meters);
        this.validator = new TokenBatchValidator(topics.calibrationBatches.valueSerde().deserializer(),
                topics.calibrationBatches.name(), model.id(), checkpoint.config().vocabSize(), config.getInt("seq.len"), criteria);
        this.meters = ScorerMeters.register(meters, instanceId);
        this.llama = checkpoint.load(LlamaModel.defaultDevice(), DataType.FLOAT32);
        this.scoring = new BatchScoring(instanceId, llama, model.numLayers(), withStats, this.meters.failures(), ledger, backoff);
        this.clients = new ScorerClients(config, instanceId, meters, withStats, MAX_POLL_RECORDS, MAX_POLL_INTERVAL_MS);
        this.committer = new TransactionCommitter(topics, model, instanceId, clients, statsSender, this.meters, ledger, backoff);
    }

    /** Replaces the retry backoff (before {@link #start()}; tests use milliseconds). */
    public ScorerService withRetryBackoff(Duration initial, Duration max) {
        backoff.set(initial, max);
        return this;
    }

    @Override
    public String name() {
        return "scorer " + instanceId;
    }

    /** Joins the group and scores on a background thread. */
    @Override
    public synchronized void start() {
        if (thread != null || stopping) {
            throw new IllegalStateException("the scorer was started or stopped already");
        }
        state = State.STARTING;
        thread = new Thread(this::run, "hfprune-scorer-" + instanceId);
        thread.setDaemon(true);
        thread.start();
    }

    /** {@link #stop(Duration)} with ten minutes for the batch in hand. */
    public boolean stop() {
        return stop(Duration.ofMinutes(10));
    }

    /**
     * Graceful stop: the batch being scored is finished and committed (a retry wait is cut short and its transaction
     * was already aborted), records polled but not started are left for the group, the clients are closed and the
     * model is released. Idempotent.
     *
     * @return whether the scorer had stopped within the timeout
     */
    @Override
    public boolean stop(Duration timeout) {
        stopping = true;
        backoff.stop();
        KafkaConsumer<byte[], byte[]> c = clients.consumer();
        if (c != null) {
            try {
                c.wakeup(); // breaks a poll; the only consumer method safe from another thread
            } catch (RuntimeException ignored) {
                // closed already
            }
        }
        synchronized (this) {
            if (thread == null) { // never started
                if (terminated.getCount() > 0) {
                    scoring.close();
                    llama.close();
                    state = State.STOPPED;
                    stopped();
                    terminated.countDown();
                }
                return true;
            }
        }
        return awaitTermination(timeout);
    }

    public boolean awaitTermination(Duration timeout) {
        try {
            return terminated.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /**
     * For tests: once this instance has sent {@code n} partials in total (counting those of committed batches), flush
     * them into the open transaction and then close both clients at once, without committing or aborting, as a
     * process crash would. The state becomes {@link State#CRASHED}. Nothing of the open transaction is visible to
     * {@code read_committed} readers; a new scorer with the same {@code instance.id} aborts it and redoes the batch.
     */
    public void crashAfterPartialsForTest(long n) {
        committer.crashAfterPartials(n);
    }

    /** For tests: as {@link #crashAfterPartialsForTest}, once {@code n} statistics chunks were sent in total. */
    public void crashAfterStatsChunksForTest(long n) {
        committer.crashAfterStatsChunks(n);
    }

    /** For tests: the next {@code n} attempts to score a valid batch throw, as a failing device would. */
    public void failScoringForTest(long n) {
        scoring.failNext(n);
    }

    /** For tests: the next {@code n} transactions fail after their partials were sent, as a broker error would. */
    public void failTransactionsForTest(long n) {
        committer.failNext(n);
    }

    public State state() {
        return state;
    }

    public String instanceId() {
        return instanceId;
    }

    public ModelInfo model() {
        return model;
    }

    /** Batches whose partials were committed. */
    public long batchesScored() {
        return committer.batchesScored();
    }

    /** Records committed to the dead-letter topic. */
    public long deadLettered() {
        return committer.deadLettered();
    }

    public long partialsCommitted() {
        return committer.partialsCommitted();
    }

    /** Why the scorer stopped on its own ({@link State#FAILED} or {@link State#FENCED}), if it did. */
    public Optional<Throwable> failure() {
        return Optional.ofNullable(failure.get());
    }

    /** The consumer's settings: a static member of the scorers' group (its {@code group.instance.id} is {@code instance.id}). */
    Map<String, Object> consumerConfig() {
        return clients.consumerConfig();
    }

    // ---------------------------------------------------------------------------------------------

    private void run() {
        boolean crashed = false;
        try {
            clients.open(topics.calibrationBatches.name(), new ConsumerRebalanceListener() {
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
            });
            state = State.RUNNING;
            running();
            LOG.info("scorer {}: scoring {} ({} layers) on {}", instanceId, model.key(), model.numLayers(),
                    llama.manager().getDevice());
            committer.start();
            while (!stopping) {
                ConsumerRecords<byte[], byte[]> records;
                try {
                    records = clients.consumer().poll(POLL);
                } catch (WakeupException e) {
                    break;
                }
                List<ConsumerRecord<byte[], byte[]>> list = new ArrayList<>(records.count());
                records.forEach(list::add);
                scoreAndCommit(list);
            }
            if (carried != null) { // woken from a poll by stop(): commit the open group
                TransactionGroup last = carried;
                carried = null;
                await(submit(last));
            }
            state = State.STOPPED;
        } catch (TransactionCommitter.Fenced e) {
            failure.set(e.getCause());
            state = State.FENCED;
            failed(new IllegalStateException("fenced: another scorer took over transactional id "
                    + config.get("topic.prefix") + "scorer-" + instanceId + " (" + e.getCause() + ")", e.getCause()));
        } catch (TransactionCommitter.CrashedForTest e) {
            crashed = true;
            state = State.CRASHED;
            failed(new IllegalStateException("crashed for a test after " + committer.partialsSent() + " partials"));
        } catch (Throwable t) {
            failure.set(t);
            state = State.FAILED;
            failed(t);
        } finally {
            committer.shutdownNow(); // idle here: every transaction was awaited
            clients.closeMetrics();
            if (!crashed) {
                clients.close(Duration.ofSeconds(30));
            }
            scoring.close();
            llama.close();
            stopped(); // after a failure the service stays FAILED
            terminated.countDown();
        }
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
    private void scoreAndCommit(List<ConsumerRecord<byte[], byte[]>> records) {
        Future<Boolean> inFlight = null;
        TransactionGroup inFlightGroup = null;
        TransactionGroup group = carried != null ? carried : new TransactionGroup(0);
        carried = null;
        int retryFrom = -1;
        for (int i = 0; i < records.size() && !stopping; i++) { // records not started are left for the group
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
        if (withStats && retryFrom < 0 && !stopping && !records.isEmpty() && !group.isEmpty() && group.tokens < flushTokens
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
