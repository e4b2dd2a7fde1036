package ai.hfprune.pipeline.run;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.record.TimestampType;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;

class PipelineWatcherTest {

    private static final List<String> TOPICS = List.of("coverage", "triggers", "results");

    @Test
    void aTriggerComesAfterTheCoverageItWasEmittedWithAndEachPartitionKeepsItsOrder() {
        Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> polled = new LinkedHashMap<>();
        // the consumer hands out the trigger's partition first
        polled.put(new TopicPartition("triggers", 0), List.of(record("triggers", 0, 0, 40)));
        // one coverage partition, with a timestamp out of order (partials of two scorers): offset order stays
        polled.put(new TopicPartition("coverage", 1), List.of(record("coverage", 1, 0, 10), record("coverage", 1, 1, 30),
                record("coverage", 1, 2, 20), record("coverage", 1, 3, 40)));
        polled.put(new TopicPartition("results", 0), List.of(record("results", 0, 0, 35)));

        List<String> order = PipelineWatcher.inReportOrder(new ConsumerRecords<>(polled, Map.of()), TOPICS).stream()
                .map(r -> r.topic() + "@" + r.offset()).toList();

        assertEquals(List.of("coverage@0", "coverage@1", "coverage@2", "results@0", "coverage@3", "triggers@0"), order);
    }

    private static ConsumerRecord<byte[], byte[]> record(String topic, int partition, long offset, long timestamp) {
        return new ConsumerRecord<>(topic, partition, offset, timestamp, TimestampType.CREATE_TIME, 0, 0, new byte[0], new byte[0],
                new RecordHeaders(), Optional.empty());
    }
}
