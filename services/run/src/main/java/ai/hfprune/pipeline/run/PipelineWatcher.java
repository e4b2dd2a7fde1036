package ai.hfprune.pipeline.run;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneTrigger;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Reads what the pipeline reports (coverage snapshots, triggers, results) from the moment it is created, for the
 * progress lines of {@code hfprune run} and for tests. Triggers and results are also queued ({@link #nextTrigger},
 * {@link #nextResult}). A watcher whose thread dies says so: every wait on it then throws the cause at once.
 */
public final class PipelineWatcher implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(PipelineWatcher.class);

    /** How long the watcher waits for its topics' partitions to show in the metadata before it gives up. */
    static final Duration METADATA_WAIT = Duration.ofSeconds(60);

    private final Topics topics;
    private final List<String> topicOrder;
    private final KafkaConsumer<byte[], byte[]> consumer;
    private final BlockingQueue<PruneResult> results = new LinkedBlockingQueue<>();
    private final BlockingQueue<PruneTrigger> triggers = new LinkedBlockingQueue<>();
    private final Consumer<String> progress;
    private final Thread thread;
    private volatile boolean running = true;
    /** What killed the watcher's thread, if anything did. */
    private volatile Throwable failure;

    public PipelineWatcher(String bootstrap, Topics topics, Consumer<String> progress) {
        this(bootstrap, topics, progress, METADATA_WAIT);
    }

    /**
     * @param metadataWait how long to wait for every topic to list its partitions; then the watcher fails with the
     *                     topics' names instead of watching nothing
     */
    PipelineWatcher(String bootstrap, Topics topics, Consumer<String> progress, Duration metadataWait) {
        this.topics = topics;
        this.progress = progress;
        Map<String, Object> p = ClientConfigs.reader(bootstrap);
        // asking for a topic's partitions must never create it: a broker would make it with its default partitions
        // and settings, and the pipeline's own creation would then find it there and keep it
        p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, false);
        consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        topicOrder = List.of(topics.coverage.name(), topics.pruneTriggers.name(), topics.pruneResults.name());
        try {
            List<TopicPartition> partitions = partitionsOf(topicOrder, metadataWait);
            consumer.assign(partitions);
            consumer.seekToEnd(partitions);
            partitions.forEach(consumer::position); // fixes "now" before anything is sent
        } catch (RuntimeException e) {
            consumer.close();
            throw e;
        }
        thread = new Thread(this::loop, "hfprune-watcher");
        thread.setDaemon(true);
        thread.start();
    }

    /**
     * Every partition of every topic, asking again until each topic lists some: just after the topics were created the
     * metadata may not list them yet, and a watcher assigned no partitions would see nothing (and its poll throws).
     */
    private List<TopicPartition> partitionsOf(List<String> names, Duration wait) {
        long deadline = System.nanoTime() + wait.toNanos();
        List<TopicPartition> partitions = new ArrayList<>();
        List<String> missing = new ArrayList<>(names);
        while (true) {
            for (var it = missing.iterator(); it.hasNext(); ) {
                String topic = it.next();
                List<PartitionInfo> infos;
                try {
                    infos = consumer.partitionsFor(topic, Duration.ofMillis(Math.max(1, remainingMillis(deadline))));
                } catch (org.apache.kafka.common.errors.TimeoutException e) {
                    infos = List.of(); // the metadata did not come in time: ask again while there is time
                }
                if (!infos.isEmpty()) {
                    infos.forEach(info -> partitions.add(new TopicPartition(topic, info.partition())));
                    it.remove();
                }
            }
            if (missing.isEmpty()) {
                return partitions;
            }
            if (remainingMillis(deadline) <= 0) {
                throw new HfpruneException("the pipeline watcher found no partitions of " + String.join(", ", missing)
                        + " within " + wait.toSeconds() + " s (were the topics created on this cluster?)");
            }
            try {
                Thread.sleep(Math.min(100, remainingMillis(deadline)));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new HfpruneException("interrupted while the pipeline watcher waited for its topics", e);
            }
        }
    }

    private static long remainingMillis(long deadlineNanos) {
        return TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime());
    }

    private void loop() {
        try {
            while (running) {
                for (ConsumerRecord<byte[], byte[]> r : inReportOrder(consumer.poll(Duration.ofMillis(200)), topicOrder)) {
                    Report report;
                    try {
                        report = read(r);
                    } catch (RuntimeException e) { // a foreign or broken record must not blind the watcher
                        report = new Report("skipped an unreadable record of " + r.topic() + " at offset " + r.offset() + ": "
                                + e.getMessage(), () -> { });
                    }
                    progress.accept(report.line()); // outside the try: a failure to report is the watcher's, not the record's
                    report.thenQueue().run(); // after its line, so that a caller's summary follows the result line
                }
            }
        } catch (WakeupException e) {
            // closing
        } catch (RuntimeException | Error e) {
            // whoever waits for results must learn this at once, not after their timeout
            failure = e;
            LOG.error("the pipeline watcher stopped", e);
        }
    }

    /**
     * The records of one poll merged across partitions by timestamp, each partition's in offset order. A Streams
     * commit makes a batch of coverage snapshots and the trigger that came with the last of them visible at once;
     * the consumer hands them out partition by partition, which would print the trigger before the coverage that led
     * to it. Equal timestamps (a trigger and the snapshot it was emitted with) go in {@code topicOrder}.
     */
    static List<ConsumerRecord<byte[], byte[]>> inReportOrder(ConsumerRecords<byte[], byte[]> records, List<String> topicOrder) {
        List<Deque<ConsumerRecord<byte[], byte[]>>> heads = new ArrayList<>();
        for (TopicPartition tp : records.partitions()) {
            heads.add(new ArrayDeque<>(records.records(tp)));
        }
        Comparator<ConsumerRecord<byte[], byte[]>> order = Comparator.<ConsumerRecord<byte[], byte[]>>comparingLong(ConsumerRecord::timestamp)
                .thenComparingInt(r -> topicOrder.indexOf(r.topic()));
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>(records.count());
        while (true) {
            Deque<ConsumerRecord<byte[], byte[]>> next = null;
            for (Deque<ConsumerRecord<byte[], byte[]>> d : heads) {
                if (!d.isEmpty() && (next == null || order.compare(d.peekFirst(), next.peekFirst()) < 0)) {
                    next = d;
                }
            }
            if (next == null) {
                return out;
            }
            out.add(next.pollFirst());
        }
    }

    /** A decoded record: its progress line, and what queues it for {@link #nextTrigger} or {@link #nextResult}. */
    private record Report(String line, Runnable thenQueue) {
    }

    private Report read(ConsumerRecord<byte[], byte[]> r) {
        if (r.topic().equals(topics.coverage.name())) {
            CoverageSnapshot c = topics.coverage.valueSerde().deserializer().deserialize(r.topic(), r.value());
            return new Report(String.format("coverage  %s/%s: %d tokens in %d batches (%d pending), %d/%d layers complete",
                    c.getModel().getName(), c.getCriterion(), c.getTokens(), c.getBatches(), c.getPendingBatches(),
                    c.getLayersComplete(), c.getNumLayers()), () -> { });
        } else if (r.topic().equals(topics.pruneTriggers.name())) {
            PruneTrigger t = topics.pruneTriggers.valueSerde().deserializer().deserialize(r.topic(), r.value());
            return new Report(String.format("trigger   %s/%s version %d at %d tokens (threshold %d)", t.getModel().getName(),
                    t.getCriterion(), t.getVersion(), t.getSnapshot().getTokens(), t.getThresholdTokens()), () -> triggers.add(t));
        } else {
            PruneResult res = topics.pruneResults.valueSerde().deserializer().deserialize(r.topic(), r.value());
            return new Report(String.format("result    %s/%s version %d: %s%s", res.getModel().getName(), res.getCriterion(),
                    res.getVersion(), res.getStatus(), res.getError().isEmpty() ? "" : " (" + res.getError() + ")"),
                    () -> results.add(res));
        }
    }

    /** The next trigger, or null after the timeout; throws at once if the watcher has failed. */
    public PruneTrigger nextTrigger(Duration timeout) throws InterruptedException {
        return next(triggers, timeout);
    }

    /** The next result, or null after the timeout; throws at once if the watcher has failed. */
    public PruneResult nextResult(Duration timeout) throws InterruptedException {
        return next(results, timeout);
    }

    private <T> T next(BlockingQueue<T> queue, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            T item = queue.poll(Math.min(100, Math.max(0, remainingMillis(deadline))), TimeUnit.MILLISECONDS);
            if (item != null) {
                return item;
            }
            checkHealthy();
            if (remainingMillis(deadline) <= 0) {
                return null;
            }
        }
    }

    /** Throws the watcher's failure, if its thread has died of one. */
    public void checkHealthy() {
        Throwable f = failure;
        if (f != null) {
            throw new HfpruneException("the pipeline watcher failed: " + f, f);
        }
    }

    /** Blocks until the watcher stops: returns when it is closed, throws its failure if it dies. */
    public void awaitStop() throws InterruptedException {
        thread.join();
        checkHealthy();
    }

    @Override
    public void close() {
        running = false;
        consumer.wakeup();
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        consumer.close();
    }
}
