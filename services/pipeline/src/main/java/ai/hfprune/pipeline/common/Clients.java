package ai.hfprune.pipeline.common;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.slf4j.Logger;

import java.util.Properties;

/** Kafka clients the services share, and closing them on the way out. */
public final class Clients {
    private Clients() {
    }

    /**
     * A consumer for reading topics by assignment, in no group and committing nothing ({@code read_committed}, records
     * up to the record limit): the pruner's readers of calibration-stats and calibration-batches.
     */
    public static KafkaConsumer<byte[], byte[]> reader(String bootstrap) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        c.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Topics.MAX_RECORD_BYTES);
        c.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, Topics.MAX_RECORD_BYTES);
        return new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** A client that may be closed with a timeout ({@code producer::close} with a duration bound in). */
    @FunctionalInterface
    public interface Closing {
        void close();
    }

    /** Closes {@code client} if there is one; a failure is logged, not thrown, so the service's other clients close too. */
    public static void closeQuietly(Object client, Closing close, Logger log, String what) {
        if (client == null) {
            return;
        }
        try {
            close.close();
        } catch (RuntimeException e) {
            log.warn("{}: {}", what, e.toString());
        }
    }
}
