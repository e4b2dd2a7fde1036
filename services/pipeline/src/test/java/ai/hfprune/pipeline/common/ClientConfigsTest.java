package ai.hfprune.pipeline.common;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.streams.StreamsConfig;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The client bases: every producer (Streams' too) can buffer its largest record — a producer refuses a record larger
 * than its buffer.memory with a RecordTooLargeException, which no retry mends — and every consumer can fetch it.
 */
class ClientConfigsTest {

    @Test
    void producersBufferTheirLargestRecord() {
        Map<String, Object> p = ClientConfigs.transactional("b:9092", "c", "t");
        long max = ((Number) p.get(ProducerConfig.MAX_REQUEST_SIZE_CONFIG)).longValue();
        assertEquals(Topics.MAX_RECORD_BYTES, max);
        assertTrue(((Number) p.get(ProducerConfig.BUFFER_MEMORY_CONFIG)).longValue() > max);
        assertEquals("t", p.get(ProducerConfig.TRANSACTIONAL_ID_CONFIG));

        Properties s = ClientConfigs.streams("b:9092", "app");
        assertEquals(max, ((Number) s.get(StreamsConfig.producerPrefix(ProducerConfig.MAX_REQUEST_SIZE_CONFIG))).longValue());
        assertTrue(((Number) s.get(StreamsConfig.producerPrefix(ProducerConfig.BUFFER_MEMORY_CONFIG))).longValue() > max);
        assertEquals(StreamsConfig.EXACTLY_ONCE_V2, s.get(StreamsConfig.PROCESSING_GUARANTEE_CONFIG));
    }

    @Test
    void consumersFetchTheLargestRecordAndReadCommittedOnly() {
        Map<String, Object> c = ClientConfigs.groupConsumer("b:9092", "c", "g");
        assertEquals(Topics.MAX_RECORD_BYTES, c.get(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG));
        assertEquals(Topics.MAX_RECORD_BYTES, c.get(ConsumerConfig.FETCH_MAX_BYTES_CONFIG));
        assertEquals("read_committed", c.get(ConsumerConfig.ISOLATION_LEVEL_CONFIG));
        assertEquals(false, c.get(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG));
        assertEquals("g", c.get(ConsumerConfig.GROUP_ID_CONFIG));
    }
}
