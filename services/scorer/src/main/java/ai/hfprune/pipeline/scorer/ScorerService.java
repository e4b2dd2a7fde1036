package ai.hfprune.pipeline.scorer;

import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.compensate.Compensation;
import ai.hfprune.engine.compensate.GramAccumulator;
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
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
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
 * <i>stats group</i> ({@link GroupAssembler}: batches across polls, up to {@code scorer.stats.flush.tokens} tokens) and
 * carries the batches' partials (each naming the group), the group's statistics once ({@link StatsSender}: packed,
 * chunked, for each criterion) and the offsets past the batches. Batches are scored before the transaction begins
 * (their partials wait in memory), so a transaction is open only for its sends. A crash loses the open group and at
 * most an open transaction, as above: statistics are never lost or counted twice.
 *
 * <p><b>Parts.</b> This class is the service: its lifecycle, the poll loop and the wiring. The scoring thread's
 * {@link GroupAssembler} takes each poll's records, scores them one by one ({@link BatchScoring}) and gathers the
 * outcomes into transaction groups; the {@link TransactionCommitter} commits each group on its own thread. Both share
 * the Kafka clients ({@link ScorerClients}), the bookkeeping of records being retried ({@link RetryLedger}), the
 * backoff ({@link RetryBackoff}) and the meters ({@link ScorerMeters}).
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

    private volatile State state = State.NEW;
    private volatile boolean stopping;
    private final CountDownLatch terminated = new CountDownLatch(1);
    private final AtomicReference<Throwable> failure = new AtomicReference<>();

    private Thread thread;
    private final RetryBackoff backoff = new RetryBackoff(() -> stopping = true);
    private final ScorerClients clients;
    private final BatchScoring scoring;
    private final TransactionCommitter committer;
    private final GroupAssembler groups;

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
        long commitIntervalNanos = TimeUnit.MILLISECONDS.toNanos(config.getLong("scorer.commit.interval.ms"));
        config.validate();
        boolean withStats = Compensation.parse(config.compensation()).usesStats();
        long flushTokens = config.statsFlushTokens();
        StatsSender statsSender = new StatsSender(topics, model, instanceId, config.statsChunkBytes(), meters);
        TokenBatchValidator validator = new TokenBatchValidator(topics.calibrationBatches.valueSerde().deserializer(),
                topics.calibrationBatches.name(), model.id(), checkpoint.config().vocabSize(), config.getInt("seq.len"), criteria);
        ScorerMeters scorerMeters = ScorerMeters.register(meters, instanceId);
        this.llama = checkpoint.load(LlamaModel.defaultDevice(), DataType.FLOAT32);
        RetryLedger ledger = new RetryLedger();
        this.clients = new ScorerClients(config, instanceId, meters, withStats, MAX_POLL_RECORDS, MAX_POLL_INTERVAL_MS);
        this.scoring = new BatchScoring(instanceId, llama, config.scorerMemory(), config.scorerPrecision(), model.numLayers(),
                withStats, scorerMeters.failures(), ledger, backoff);
        this.committer = new TransactionCommitter(topics, model, instanceId, clients, statsSender, scorerMeters, ledger, backoff);
        this.groups = new GroupAssembler(instanceId, clients, validator, scoring, committer, ledger, withStats,
                flushTokens, commitIntervalNanos, () -> stopping);
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
            clients.open(topics.calibrationBatches.name(), groups.rebalanceListener());
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
                groups.scoreAndCommit(list);
            }
            groups.commitCarried(); // woken from a poll by stop(): commit the open group
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
}
