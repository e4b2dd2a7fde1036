package ai.hfprune.pipeline.common;

import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.slf4j.Logger;

/** Kafka clients the services share, and closing them on the way out. */
public final class Clients {
    private Clients() {
    }

    /**
     * A consumer for reading topics by assignment, in no group and committing nothing ({@code read_committed}, records
     * up to the record limit): the pruner's readers of calibration-stats and calibration-batches.
     */
    public static KafkaConsumer<byte[], byte[]> reader(String bootstrap) {
        return new KafkaConsumer<>(ClientConfigs.reader(bootstrap), new ByteArrayDeserializer(), new ByteArrayDeserializer());
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
