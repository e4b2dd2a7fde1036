package ai.hfprune.pipeline.sampler;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.model.CheckpointFiles;
import ai.hfprune.engine.tokenizer.Tokenizer;
import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.Clients;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.ServiceBase;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.TokenBatch;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.kafka.KafkaClientMetrics;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The calibration-sampler: reads documents, packs them into {@link TokenBatch}es exactly as {@code hfprune score}
 * does (see {@link BatchPacker}) and sends them to {@link Topics#calibrationBatches} (key: the batch id) with an
 * idempotent producer ({@code acks=all}).
 *
 * <p><b>File run</b> ({@code follow=false}): the files, in order, as one token stream; at most {@code max.windows}
 * windows (0: all); at the end the last, possibly smaller, batch goes out and the carried tokens are dropped. The
 * sampler then completes ({@link #awaitCompletion}).
 *
 * <p><b>Follow mode</b> ({@code follow=true}): the files first (no window cap), then, without end, the documents of
 * {@link Topics#rawText} (one per record; consumer group {@code <topic.prefix>sampler}, {@code read_committed}), all in
 * one stream: the tokens after the last window are carried over to the next documents and only full batches go out.
 * The offset of a raw-text record is committed once every token of its document is in a batch the broker has
 * acknowledged, so a restart re-reads exactly the documents whose tokens were not sent yet (the document that was
 * cut by the last sent batch is re-read whole). Run one follow-mode sampler per raw-text topic: the stream is one
 * sequence.
 *
 * <p>Documents seen before (sha256 of the trimmed text) are skipped; that set lives in memory only, so a restarted
 * sampler does not remember them (its batches keep their ids, so the aggregator drops re-sent batches).
 *
 * <p>Meters: {@code hfprune_sampler_documents} (outcome=sent|duplicate), {@code hfprune_sampler_tokens} (tokens in
 * the batches sent), {@code hfprune_sampler_batches}; Kafka client metrics of its producer and consumer.
 */
public final class CalibrationSampler extends ServiceBase {

    private static final Logger LOG = LoggerFactory.getLogger(CalibrationSampler.class);
    private static final Duration POLL = Duration.ofMillis(500);

    private final PipelineConfig config;
    private final Topics topics;
    private final List<Path> files;
    private final boolean follow;
    private final MeterRegistry meters;
    private final BatchPacker packer;
    private final String jsonlField;
    private final String instanceId;
    private final double ratePerSecond;

    private final Counter documentsSent;
    private final Counter documentsDuplicate;
    private final Counter tokens;
    private final Counter batches;

    private final AtomicLong sent = new AtomicLong();
    private final AtomicLong tokensSent = new AtomicLong();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final AtomicReference<Exception> sendFailure = new AtomicReference<>();
    private final CountDownLatch stopSignal = new CountDownLatch(1);
    private final CountDownLatch done = new CountDownLatch(1);
    private volatile boolean stopping;
    private volatile boolean completed;
    private Thread thread;
    private volatile KafkaConsumer<String, String> consumer;
    private KafkaProducer<String, TokenBatch> producer;
    private final List<KafkaClientMetrics> clientMetrics = new ArrayList<>();
    private long nextSendNanos = Long.MIN_VALUE;

    /** Follow mode: raw-text record offsets not yet committed, per partition, with the stream position where each document ends. */
    private final Map<TopicPartition, ArrayDeque<long[]>> uncommitted = new HashMap<>();
    private final Map<TopicPartition, Long> consumedUpTo = new HashMap<>();
    private final Map<TopicPartition, Long> committed = new HashMap<>();

    /**
     * @param model     the identity the batches carry (the scorers only take batches of their model)
     * @param tokenizer the model's tokenizer
     * @param files     .txt/.jsonl files or folders (may be empty in follow mode)
     * @param follow    after the files, follow the raw-text topic until {@link #stop()}
     */
    public CalibrationSampler(PipelineConfig config, Topics topics, ModelId model, Tokenizer tokenizer, List<Path> files,
                              boolean follow, MeterRegistry meters) {
        this.config = config;
        this.topics = topics;
        this.files = DocumentFiles.expand(files);
        this.follow = follow;
        this.meters = meters;
        this.jsonlField = config.get("sampler.jsonl.field");
        this.instanceId = config.instanceId();
        this.ratePerSecond = config.getDouble("sampler.rate.batches.per.second");
        if (ratePerSecond < 0) {
            throw new HfpruneException("sampler.rate.batches.per.second must be ≥ 0, got " + ratePerSecond);
        }
        int maxWindows = config.getInt("max.windows");
        if (maxWindows < 0) {
            throw new HfpruneException("max.windows must be 0 (all) or positive, got " + maxWindows);
        }
        if (!follow && this.files.isEmpty()) {
            throw new HfpruneException("the sampler has no data files to read (data) and does not follow " + topics.rawText.name());
        }
        if (config.get("bootstrap.servers").isBlank()) {
            throw new HfpruneException("bootstrap.servers is not set");
        }
        this.packer = new BatchPacker(model, tokenizer, config.getInt("seq.len"), config.getInt("batch.windows"),
                Arrays.asList(config.get("criteria").split(",")), follow ? 0 : maxWindows);
        this.documentsSent = meters.counter("hfprune_sampler_documents", "outcome", "sent");
        this.documentsDuplicate = meters.counter("hfprune_sampler_documents", "outcome", "duplicate");
        this.tokens = meters.counter("hfprune_sampler_tokens");
        this.batches = meters.counter("hfprune_sampler_batches");
    }

    /** The model's identity and tokenizer from an opened checkpoint. */
    public CalibrationSampler(PipelineConfig config, Topics topics, CheckpointFiles checkpoint, List<Path> files, boolean follow,
                              MeterRegistry meters) {
        this(config, topics, new ModelId(checkpoint.name(), checkpoint.sha256()), checkpoint.tokenizer(), files, follow, meters);
    }

    @Override
    public String name() {
        return "sampler " + instanceId;
    }

    /** Starts sampling on a background thread. */
    @Override
    public synchronized void start() {
        if (thread != null) {
            throw new IllegalStateException("the sampler was started already");
        }
        thread = new Thread(this::run, "hfprune-sampler");
        thread.setDaemon(true);
        thread.start();
    }

    /**
     * Stops reading, waits until every batch sent is acknowledged (and, following, commits the raw-text offsets of
     * the documents fully sent), and closes the clients. Windows of an unfilled batch are not sent. Idempotent.
     */
    public void stop() {
        stop(Duration.ofMinutes(2));
    }

    @Override
    public boolean stop(Duration timeout) {
        stopping = true;
        stopSignal.countDown();
        KafkaConsumer<String, String> c = consumer;
        if (c != null) {
            try {
                c.wakeup(); // breaks a poll; the only consumer method safe from another thread
            } catch (RuntimeException ignored) {
                // closed already
            }
        }
        synchronized (this) {
            if (thread == null) { // never started
                stopped();
                done.countDown();
                return true;
            }
        }
        try {
            return done.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Waits for a file run to end (or the sampler to stop or fail). @return whether it ended within the timeout */
    public boolean awaitCompletion(Duration timeout) throws InterruptedException {
        return done.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** Whether a file run sent everything it was to send. */
    public boolean completed() {
        return completed;
    }

    public boolean isRunning() {
        return thread != null && done.getCount() > 0;
    }

    /** Batches handed to the producer so far. */
    public long batchesSent() {
        return sent.get();
    }

    /** Tokens in the batches handed to the producer so far. */
    public long tokensSent() {
        return tokensSent.get();
    }

    /** Why the sampler stopped on its own, if it did. */
    public Optional<Throwable> failure() {
        return Optional.ofNullable(failure.get());
    }

    // ---------------------------------------------------------------------------------------------

    private void run() {
        try {
            producer = new KafkaProducer<>(producerConfig(), topics.calibrationBatches.keySerde().serializer(),
                    topics.calibrationBatches.valueSerde().serializer());
            bind(new KafkaClientMetrics(producer));
            running();
            for (Path file : files) {
                if (stopping || packer.capped()) {
                    break;
                }
                String source = file.getFileName().toString();
                long docs = DocumentFiles.forEachDocument(file, jsonlField, doc -> {
                    offer(doc, source);
                    return !stopping && !packer.capped();
                });
                LOG.info("sampler: {} documents from {}; {} batches sent so far", docs, file, sent.get());
            }
            if (!follow) {
                if (!stopping) {
                    packer.finish(this::send);
                }
                producer.flush();
                checkSends();
                completed = !stopping;
                LOG.info("sampler: file run {}: {} batches of up to {} windows of {} tokens", completed ? "complete" : "stopped",
                        sent.get(), config.getInt("batch.windows"), packer.seqLen());
                return;
            }
            followTopic();
        } catch (Throwable t) {
            failure.set(t);
            failed(t);
        } finally {
            closeClients();
            stopped(); // done, or stopped; after a failure the sampler stays FAILED
            done.countDown();
        }
    }

    private void followTopic() {
        String topic = topics.rawText.name();
        consumer = new KafkaConsumer<>(consumerConfig(), topics.rawText.keySerde().deserializer(),
                topics.rawText.valueSerde().deserializer());
        bind(new KafkaClientMetrics(consumer));
        if (stopping) {
            return;
        }
        try {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    producer.flush();
                    checkSends();
                    commitSent();
                    partitions.forEach(tp -> {
                        uncommitted.remove(tp);
                        consumedUpTo.remove(tp);
                        committed.remove(tp);
                    });
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                }
            });
            while (!stopping) {
                ConsumerRecords<String, String> records = consumer.poll(POLL);
                for (ConsumerRecord<String, String> r : records) {
                    offer(r.value(), topic);
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    uncommitted.computeIfAbsent(tp, k -> new ArrayDeque<>()).add(new long[] {r.offset(), packer.streamTokens()});
                    consumedUpTo.put(tp, r.offset() + 1);
                }
                if (!records.isEmpty()) {
                    producer.flush();
                    checkSends();
                    commitSent();
                }
            }
        } catch (WakeupException e) {
            // stop()
        }
        producer.flush();
        checkSends();
        commitSent();
    }

    private void offer(String doc, String source) {
        BatchPacker.Outcome outcome = packer.add(doc, source, this::send);
        if (outcome == BatchPacker.Outcome.SENT) {
            documentsSent.increment();
        } else if (outcome == BatchPacker.Outcome.DUPLICATE) {
            documentsDuplicate.increment();
        }
    }

    private void send(TokenBatch batch) {
        checkSends();
        rateLimit();
        producer.send(new ProducerRecord<>(topics.calibrationBatches.name(), batch.getBatchId(), batch), (metadata, e) -> {
            if (e != null) {
                sendFailure.compareAndSet(null, e);
            }
        });
        sent.incrementAndGet();
        batches.increment();
        long batchTokens = (long) batch.getWindows().size() * batch.getSeqLen();
        tokensSent.addAndGet(batchTokens);
        tokens.increment(batchTokens);
    }

    private void checkSends() {
        Exception e = sendFailure.get();
        if (e != null) {
            throw new HfpruneException("sending a batch to " + topics.calibrationBatches.name() + " failed: " + e.getMessage(), e);
        }
    }

    private void rateLimit() {
        if (ratePerSecond <= 0) {
            return;
        }
        long interval = (long) (1e9 / ratePerSecond);
        long now = System.nanoTime();
        if (nextSendNanos != Long.MIN_VALUE && nextSendNanos - now > 0) {
            try {
                stopSignal.await(nextSendNanos - now, TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            now = System.nanoTime();
        }
        nextSendNanos = (nextSendNanos == Long.MIN_VALUE ? now : Math.max(now, nextSendNanos)) + interval;
    }

    /** Commits, per partition, the offset of the first document with tokens not yet in an acknowledged batch. */
    private void commitSent() {
        long sentTokens = packer.windowsInBatches() * packer.seqLen();
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (Map.Entry<TopicPartition, ArrayDeque<long[]>> e : uncommitted.entrySet()) {
            ArrayDeque<long[]> docs = e.getValue();
            while (!docs.isEmpty() && docs.peekFirst()[1] <= sentTokens) {
                docs.pollFirst();
            }
            long offset = docs.isEmpty() ? consumedUpTo.get(e.getKey()) : docs.peekFirst()[0];
            if (!Long.valueOf(offset).equals(committed.get(e.getKey()))) {
                offsets.put(e.getKey(), new OffsetAndMetadata(offset));
            }
        }
        if (!offsets.isEmpty()) {
            consumer.commitSync(offsets);
            offsets.forEach((tp, o) -> committed.put(tp, o.offset()));
        }
    }

    private void bind(KafkaClientMetrics metrics) {
        metrics.bindTo(meters);
        clientMetrics.add(metrics);
    }

    private void closeClients() {
        clientMetrics.forEach(KafkaClientMetrics::close);
        Clients.closeQuietly(consumer, () -> consumer.close(), LOG, "sampler: closing the consumer");
        Clients.closeQuietly(producer, () -> producer.close(Duration.ofSeconds(30)), LOG, "sampler: closing the producer");
    }

    private Map<String, Object> producerConfig() {
        Map<String, Object> p = ClientConfigs.producer(config.get("bootstrap.servers"), config.get("topic.prefix") + "sampler-" + instanceId);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        return p;
    }

    private Map<String, Object> consumerConfig() {
        return ClientConfigs.groupConsumer(config.get("bootstrap.servers"), config.get("topic.prefix") + "sampler-" + instanceId + "-consumer",
                config.get("topic.prefix") + "sampler");
    }

}
