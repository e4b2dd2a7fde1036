package ai.hfprune.pipeline.aggregator;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.streams.KafkaClientSupplier;

import java.util.HashMap;
import java.util.Map;

/**
 * Kafka Streams' clients, with transactional ids that survive a restart: {@code <application.id>-<instance.id>-<thread>}
 * instead of Streams' {@code <application.id>-<process id>-<thread>}.
 *
 * <p>Why: Streams keeps its process id in {@code state.dir} only when the topology has persistent stores. With the
 * aggregator's state in memory ({@link StateStores}) every start drew a new process id, so a restarted aggregator's
 * producer could not fence its killed predecessor: the dead producer's open transaction stayed open until the broker
 * timed it out ({@code transaction.timeout.ms}, 10 s under exactly-once, checked every 10 s), and every
 * {@code read_committed} reader of the repartition topic, the restarted aggregator itself among them, waited at that
 * transaction. Measured with {@code infra/recovery-times.sh}: coverage moved again 18.9 s after a kill where the
 * client was RUNNING after 5.8 s. With the id from {@code instance.id}, the successor's {@code initTransactions()}
 * aborts the open transaction at once, as it does for the scorers (whose ids are {@code scorer-<instance.id>}).
 * Fencing is unchanged otherwise: exactly_once_v2 fences zombies by the group generation (KIP-447), and
 * {@code instance.id} is already the main consumer's {@code group.instance.id}, unique by contract.
 */
final class StableTransactionalIds implements KafkaClientSupplier {

    private final String applicationId;
    private final String instanceId;

    StableTransactionalIds(String applicationId, String instanceId) {
        this.applicationId = applicationId;
        this.instanceId = instanceId;
    }

    @Override
    public Admin getAdmin(Map<String, Object> config) {
        return Admin.create(config);
    }

    @Override
    public Producer<byte[], byte[]> getProducer(Map<String, Object> config) {
        Map<String, Object> c = new HashMap<>(config);
        Object id = c.get(ProducerConfig.TRANSACTIONAL_ID_CONFIG);
        if (id != null) {
            c.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, stable(id.toString()));
        }
        return new KafkaProducer<>(c, new ByteArraySerializer(), new ByteArraySerializer());
    }

    @Override
    public Consumer<byte[], byte[]> getConsumer(Map<String, Object> config) {
        return new KafkaConsumer<>(config, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    @Override
    public Consumer<byte[], byte[]> getRestoreConsumer(Map<String, Object> config) {
        return getConsumer(config);
    }

    @Override
    public Consumer<byte[], byte[]> getGlobalConsumer(Map<String, Object> config) {
        return getConsumer(config);
    }

    /** {@code <application.id>-<anything>-<thread>} becomes {@code <application.id>-<instance.id>-<thread>}. */
    String stable(String streamsId) {
        int thread = streamsId.lastIndexOf('-');
        if (!streamsId.startsWith(applicationId + "-") || thread <= applicationId.length()) {
            throw new IllegalStateException("Kafka Streams' transactional id " + streamsId + " is not <"
                    + applicationId + ">-<process id>-<thread>; its format changed");
        }
        return applicationId + "-" + instanceId + streamsId.substring(thread);
    }
}
