package ai.hfprune.pipeline.run;

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

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.Consumer;

/**
 * Reads what the pipeline reports (coverage snapshots, triggers, results) from the moment it is created, for the
 * progress lines of {@code hfprune run} and for tests. Triggers and results are also queued ({@link #nextTrigger},
 * {@link #nextResult}).
 */
public final class PipelineWatcher implements AutoCloseable {

    private final Topics topics;
    private final List<String> topicOrder;
    private final KafkaConsumer<byte[], byte[]> consumer;
    private final BlockingQueue<PruneResult> results = new LinkedBlockingQueue<>();
    private final BlockingQueue<PruneTrigger> triggers = new LinkedBlockingQueue<>();
    private final Consumer<String> progress;
    private final Thread thread;
    private volatile boolean running = true;

    public PipelineWatcher(String bootstrap, Topics topics, Consumer<String> progress) {
        this.topics = topics;
        this.progress = progress;
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Topics.MAX_RECORD_BYTES);
        p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, Topics.MAX_RECORD_BYTES);
        consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<TopicPartition> partitions = new ArrayList<>();
        topicOrder = List.of(topics.coverage.name(), topics.pruneTriggers.name(), topics.pruneResults.name());
        for (String topic : topicOrder) {
            // just after the topics were created the metadata may not list their partitions yet
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(30));
            while (infos.isEmpty() && System.nanoTime() < deadline) {
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
                infos = consumer.partitionsFor(topic, Duration.ofSeconds(30));
            }
            for (PartitionInfo info : infos) {
                partitions.add(new TopicPartition(topic, info.partition()));
            }
        }
        consumer.assign(partitions);
        consumer.seekToEnd(partitions);
        partitions.forEach(consumer::position); // fixes "now" before anything is sent
        thread = new Thread(this::loop, "hfprune-watcher");
        thread.setDaemon(true);
        thread.start();
    }

    private void loop() {
        try {
            while (running) {
                for (ConsumerRecord<byte[], byte[]> r : inReportOrder(consumer.poll(Duration.ofMillis(200)), topicOrder)) {
                    try {
                        report(r);
                    } catch (RuntimeException e) { // a foreign or broken record must not blind the watcher
                        progress.accept("skipped an unreadable record of " + r.topic() + " at offset " + r.offset() + ": "
                                + e.getMessage());
                    }
                }
            }
        } catch (WakeupException e) {
            // closing
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

    private void report(ConsumerRecord<byte[], byte[]> r) {
        if (r.topic().equals(topics.coverage.name())) {
            CoverageSnapshot c = topics.coverage.valueSerde().deserializer().deserialize(r.topic(), r.value());
            progress.accept(String.format("coverage  %s/%s: %d tokens in %d batches (%d pending), %d/%d layers complete",
                    c.getModel().getName(), c.getCriterion(), c.getTokens(), c.getBatches(), c.getPendingBatches(),
                    c.getLayersComplete(), c.getNumLayers()));
        } else if (r.topic().equals(topics.pruneTriggers.name())) {
            PruneTrigger t = topics.pruneTriggers.valueSerde().deserializer().deserialize(r.topic(), r.value());
            progress.accept(String.format("trigger   %s/%s version %d at %d tokens (threshold %d)", t.getModel().getName(),
                    t.getCriterion(), t.getVersion(), t.getSnapshot().getTokens(), t.getThresholdTokens()));
            triggers.add(t);
        } else {
            PruneResult res = topics.pruneResults.valueSerde().deserializer().deserialize(r.topic(), r.value());
            progress.accept(String.format("result    %s/%s version %d: %s%s", res.getModel().getName(), res.getCriterion(),
                    res.getVersion(), res.getStatus(), res.getError().isEmpty() ? "" : " (" + res.getError() + ")"));
            results.add(res);
        }
    }

    /** The next trigger, or null after the timeout. */
    public PruneTrigger nextTrigger(Duration timeout) throws InterruptedException {
        return triggers.poll(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
    }

    /** The next result, or null after the timeout. */
    public PruneResult nextResult(Duration timeout) throws InterruptedException {
        return results.poll(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
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
