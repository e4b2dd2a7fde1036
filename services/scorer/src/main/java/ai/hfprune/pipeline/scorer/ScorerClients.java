package ai.hfprune.pipeline.scorer;

import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.Clients;
import ai.hfprune.pipeline.common.PipelineConfig;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.kafka.KafkaClientMetrics;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.slf4j.Logger;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A scorer's two Kafka clients and their client metrics: the transactional producer (transactional id
 * {@code <topic.prefix>scorer-<instance.id>}, used by the committer thread) and the consumer, a static member of the
 * scorers' group (used by the scoring thread).
 */
final class ScorerClients {

    private static final Logger LOG = ScorerService.LOG;

    private final PipelineConfig config;
    private final String instanceId;
    private final MeterRegistry meters;
    private final boolean withStats;
    private final int maxPollRecords;
    private final int maxPollIntervalMs;
    private final List<KafkaClientMetrics> clientMetrics = new ArrayList<>();
    private volatile KafkaConsumer<byte[], byte[]> consumer;
    private volatile KafkaProducer<byte[], byte[]> producer;

    ScorerClients(PipelineConfig config, String instanceId, MeterRegistry meters, boolean withStats, int maxPollRecords,
                  int maxPollIntervalMs) {
        this.config = config;
        this.instanceId = instanceId;
        this.meters = meters;
        this.withStats = withStats;
        this.maxPollRecords = maxPollRecords;
        this.maxPollIntervalMs = maxPollIntervalMs;
    }

    /** Creates the producer, then the consumer, which subscribes to {@code topic}. */
    void open(String topic, ConsumerRebalanceListener listener) {
        producer = newProducer();
        producer.initTransactions(); // fences an older instance with our id, aborts its open transaction
        consumer = new KafkaConsumer<>(consumerConfig(), new ByteArrayDeserializer(), new ByteArrayDeserializer());
        bind(new KafkaClientMetrics(consumer));
        consumer.subscribe(List.of(topic), listener);
    }

    /** The consumer; null before {@link #open} and after {@link #closeAsIfKilled}. */
    KafkaConsumer<byte[], byte[]> consumer() {
        return consumer;
    }

    KafkaProducer<byte[], byte[]> producer() {
        return producer;
    }

    /** Replaces a producer whose abort failed. */
    void resetProducer() {
        try {
            producer.close(Duration.ZERO);
        } catch (RuntimeException ignored) {
            // replaced below
        }
        producer = newProducer();
        producer.initTransactions(); // aborts whatever the old producer left open
    }

    private KafkaProducer<byte[], byte[]> newProducer() {
        String prefix = config.get("topic.prefix");
        Map<String, Object> p = ClientConfigs.transactional(config.get("bootstrap.servers"), prefix + "scorer-" + instanceId + "-producer",
                prefix + "scorer-" + instanceId);
        // a group's statistics of a large model take long to send (a 7B model's are ~18 GB): 5 minutes then
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, withStats ? 300_000 : 60_000);
        KafkaProducer<byte[], byte[]> created = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
        bind(new KafkaClientMetrics(created));
        return created;
    }

    /** The consumer's settings: a static member of the scorers' group (its {@code group.instance.id} is {@code instance.id}). */
    Map<String, Object> consumerConfig() {
        String prefix = config.get("topic.prefix");
        Map<String, Object> c = ClientConfigs.groupConsumer(config.get("bootstrap.servers"), prefix + "scorer-" + instanceId + "-consumer",
                prefix + "scorers");
        c.putAll(ClientConfigs.staticMember(instanceId, config.sessionTimeoutMillis()));
        c.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, maxPollRecords);
        c.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, maxPollIntervalMs);
        // keep the coordinator connection through a long rebalance (Kafka warns when it is shorter than the poll interval)
        c.put(ConsumerConfig.CONNECTIONS_MAX_IDLE_MS_CONFIG, maxPollIntervalMs + 60_000);
        return c;
    }

    private void bind(KafkaClientMetrics metrics) {
        metrics.bindTo(meters);
        clientMetrics.add(metrics);
    }

    /** Unbinds the client metrics of every client this scorer made. */
    void closeMetrics() {
        clientMetrics.forEach(KafkaClientMetrics::close);
    }

    /** A test's crash: what was sent is in the log, inside the open transaction, which is neither committed nor aborted. */
    void closeAsIfKilled() {
        producer.flush(); // the records are in the log, inside the open transaction
        producer.close(Duration.ZERO); // no abort: the transaction stays open, as after a kill -9
        KafkaConsumer<byte[], byte[]> c = consumer;
        consumer = null;
        c.close(); // commits nothing and, a static member, stays in the group as after a kill -9
    }

    void close(Duration timeout) {
        KafkaConsumer<byte[], byte[]> c = consumer;
        KafkaProducer<byte[], byte[]> p = producer;
        // a stopped scorer leaves the group, so its partitions go to the others at once (a static member would keep
        // them for the session timeout); a killed one cannot, and its successor with the same id takes them back
        Clients.closeQuietly(c, () -> c.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)),
                LOG, "scorer " + instanceId + ": closing the consumer");
        Clients.closeQuietly(p, () -> p.close(timeout), LOG, "scorer " + instanceId + ": closing the producer");
    }
}
