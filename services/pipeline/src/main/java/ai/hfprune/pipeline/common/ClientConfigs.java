package ai.hfprune.pipeline.common;

import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.streams.StreamsConfig;

import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

/**
 * The one place where the pipeline's Kafka clients are configured: the bases of producers, consumers, Kafka Streams
 * and admin clients. A service takes a base and adds only what is its own (a transaction timeout, poll sizes).
 *
 * <p>Every producer may send records up to {@link Topics#MAX_RECORD_BYTES} (score snapshots and statistics of large
 * models; a dead letter carries its record as it came), and every consumer may fetch them. A producer's
 * {@code buffer.memory} must hold its largest record: Kafka's default of 32 MiB refused a 60 MB dead letter with a
 * RecordTooLargeException (and so failed the scorer's transaction again and again, and shut Kafka Streams down).
 * The buffer is taken as records wait to be sent, not up front.
 */
public final class ClientConfigs {

    /** {@code buffer.memory}: the largest record and 32 MiB of smaller ones beside it. */
    public static final long PRODUCER_BUFFER_BYTES = Topics.MAX_RECORD_BYTES + (32L << 20);

    private ClientConfigs() {
    }

    /** An idempotent producer ({@code acks=all}) of records up to the record limit. */
    public static Map<String, Object> producer(String bootstrap, String clientId) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Topics.MAX_RECORD_BYTES);
        p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, PRODUCER_BUFFER_BYTES);
        return p;
    }

    /** {@link #producer} with a transactional id (its transactions fence an older producer with the same id). */
    public static Map<String, Object> transactional(String bootstrap, String clientId, String transactionalId) {
        Map<String, Object> p = producer(bootstrap, clientId);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        return p;
    }

    /**
     * A member of consumer group {@code groupId}: {@code read_committed}, offsets committed by the service (never
     * automatically), a new group starts at the earliest record, records up to the record limit.
     */
    public static Map<String, Object> groupConsumer(String bootstrap, String clientId, String groupId) {
        Map<String, Object> c = reader(bootstrap);
        c.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        c.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        return c;
    }

    /** A consumer that reads by assignment, in no group, committing nothing: {@code read_committed}, records up to the limit. */
    public static Map<String, Object> reader(String bootstrap) {
        Map<String, Object> c = new HashMap<>();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        c.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Topics.MAX_RECORD_BYTES);
        c.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, Topics.MAX_RECORD_BYTES);
        return c;
    }

    /**
     * Kafka Streams with exactly-once processing ({@code exactly_once_v2}); its producers, consumers and internal
     * topics take records up to the record limit.
     */
    public static Properties streams(String bootstrap, String applicationId) {
        Properties s = new Properties();
        s.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        s.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        s.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        Map<String, Object> producer = producer(bootstrap, "");
        for (String key : new String[] {ProducerConfig.MAX_REQUEST_SIZE_CONFIG, ProducerConfig.BUFFER_MEMORY_CONFIG}) {
            s.put(StreamsConfig.producerPrefix(key), producer.get(key));
        }
        Map<String, Object> consumer = reader(bootstrap);
        for (String key : new String[] {ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, ConsumerConfig.FETCH_MAX_BYTES_CONFIG}) {
            s.put(StreamsConfig.consumerPrefix(key), consumer.get(key));
        }
        s.put(StreamsConfig.topicPrefix("max.message.bytes"), String.valueOf(Topics.MAX_RECORD_BYTES));
        return s;
    }

    /**
     * Static membership of a consumer group: a member restarted with the same {@code instanceId} within
     * {@code sessionTimeoutMs} takes its partitions back without a rebalance (KIP-345); one that is not restarted is
     * removed after it. For Kafka Streams, put these under {@code StreamsConfig.mainConsumerPrefix} (Streams adds its
     * thread's index to the id).
     */
    public static Map<String, Object> staticMember(String instanceId, int sessionTimeoutMs) {
        Map<String, Object> c = new HashMap<>();
        c.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instanceId);
        c.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, sessionTimeoutMs);
        return c;
    }

    public static Map<String, Object> admin(String bootstrap) {
        Map<String, Object> a = new HashMap<>();
        a.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return a;
    }
}
