package ai.hfprune.cli.chaos;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.pipeline.common.ClientConfigs;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/** Whole topics read as they stand (committed records only, {@code read_committed}), as raw bytes. */
final class TopicReads {

    private TopicReads() {
    }

    /** Every committed record of {@code topic}, up to its end when the read began. */
    static List<ConsumerRecord<byte[], byte[]>> readAll(String bootstrap, String topic) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(ClientConfigs.reader(bootstrap), new ByteArrayDeserializer(),
                new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = List.of();
            long listed = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            while (partitions.isEmpty()) { // a topic just created may list no partition yet
                if (System.nanoTime() > listed) {
                    throw new HfpruneException(topic + " lists no partitions after 2 min");
                }
                partitions = consumer.partitionsFor(topic, Duration.ofMinutes(2)).stream()
                        .map(p -> new TopicPartition(topic, p.partition())).toList();
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions, Duration.ofMinutes(2));
            long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
            while (partitions.stream().anyMatch(tp -> consumer.position(tp, Duration.ofMinutes(2)) < end.get(tp))) {
                if (System.nanoTime() > deadline) {
                    throw new HfpruneException("reading " + topic + " took over 3 min");
                }
                consumer.poll(Duration.ofMillis(200)).forEach(out::add);
            }
        }
        return out;
    }

    /** The first committed record of {@code topic} that {@code wanted} takes, waiting for one up to {@code timeout}. */
    static ConsumerRecord<byte[], byte[]> firstRecord(String bootstrap, String topic, Predicate<ConsumerRecord<byte[], byte[]>> wanted,
                                                      Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            for (ConsumerRecord<byte[], byte[]> r : readAll(bootstrap, topic)) {
                if (wanted.test(r)) {
                    return r;
                }
            }
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new HfpruneException("interrupted");
            }
        }
        throw new HfpruneException("no record on " + topic + " within " + timeout.toSeconds() + " s");
    }
}
