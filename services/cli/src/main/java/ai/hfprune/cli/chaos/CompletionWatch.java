package ai.hfprune.cli.chaos;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.schemas.PruneTrigger;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.time.Duration;
import java.util.List;

/**
 * The clock of a run: when the first batch is on calibration-batches (the start) and when the aggregator's trigger
 * covering every token is committed (the end), as one {@code read_committed} reader of each topic sees them. The
 * readers live through a broker restart (they reconnect).
 */
final class CompletionWatch implements AutoCloseable {

    private final Thread thread;
    private final long totalTokens;
    private volatile long startNanos;
    private volatile long endNanos;
    private volatile boolean closed;
    private volatile Throwable failure;

    CompletionWatch(String bootstrap, Topics topics, long totalTokens) {
        this.totalTokens = totalTokens;
        this.thread = new Thread(() -> watch(bootstrap, topics), "chaos-clock");
        thread.setDaemon(true);
        thread.start();
    }

    private void watch(String bootstrap, Topics topics) {
        try {
            watchTopics(bootstrap, topics);
        } catch (RuntimeException | Error e) {
            failure = e;
        }
    }

    private void watchTopics(String bootstrap, Topics topics) {
        try (KafkaConsumer<byte[], byte[]> batches = reader(bootstrap, topics.calibrationBatches.name());
             KafkaConsumer<byte[], byte[]> triggers = reader(bootstrap, topics.pruneTriggers.name())) {
            while (!closed && startNanos == 0) {
                if (!batches.poll(Duration.ofMillis(50)).isEmpty()) {
                    startNanos = System.nanoTime();
                }
            }
            while (!closed && endNanos == 0) {
                for (ConsumerRecord<byte[], byte[]> r : triggers.poll(Duration.ofMillis(100))) {
                    PruneTrigger t = topics.pruneTriggers.valueSerde().deserializer().deserialize(r.topic(), r.value());
                    if (t.getSnapshot().getTokens() >= totalTokens) {
                        endNanos = System.nanoTime();
                    }
                }
            }
        }
    }

    private static KafkaConsumer<byte[], byte[]> reader(String bootstrap, String topic) {
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(ClientConfigs.reader(bootstrap), new ByteArrayDeserializer(),
                new ByteArrayDeserializer());
        List<TopicPartition> partitions = List.of();
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (partitions.isEmpty()) { // right after the topic's creation its metadata may list no partition yet
            if (System.nanoTime() > deadline) {
                c.close();
                throw new HfpruneException(topic + " lists no partitions after 2 min");
            }
            partitions = c.partitionsFor(topic, Duration.ofMinutes(2)).stream().map(p -> new TopicPartition(topic, p.partition())).toList();
        }
        c.assign(partitions);
        c.seekToBeginning(partitions);
        return c;
    }

    boolean started() {
        check();
        return startNanos != 0;
    }

    /** Throws what stopped the clock's thread, if anything did. */
    void check() {
        if (failure != null) {
            throw new HfpruneException("the run's clock failed: " + failure, failure);
        }
    }

    boolean complete() {
        check();
        return endNanos != 0;
    }

    long startNanos() {
        return startNanos;
    }

    long endNanos() {
        return endNanos;
    }

    /** Seconds from the first batch to the complete trigger. */
    double seconds() {
        return (endNanos - startNanos) / 1e9;
    }

    @Override
    public void close() throws InterruptedException {
        closed = true;
        thread.join(10_000);
    }
}
