package ai.hfprune.pipeline.embedded;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.pipeline.serde.AvroSerde;
import ai.hfprune.pipeline.serde.HttpSchemaRegistry;
import ai.hfprune.schemas.ModelId;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code hfprune broker}'s cluster: what it keeps across a restart on its data directory, and what it refuses. */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class LocalClusterTest {

    @Test
    void aRestartOnTheSameDirectoryKeepsTopicsCommittedRecordsAndSchemaIds(@TempDir Path dir) throws Exception {
        Path data = dir.resolve("cluster");
        String bootstrap;
        String clusterId;
        ModelId sent = new ModelId("stories260K", "abc123");
        try (LocalCluster cluster = LocalCluster.start(data, 0, 0)) {
            bootstrap = cluster.bootstrapServers();
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
                admin.createTopics(List.of(new NewTopic("models", 1, (short) 1))).all().get();
                clusterId = admin.describeCluster().clusterId().get();
            }
            AvroSerde<ModelId> serde = new AvroSerde<>(ModelId.class, new HttpSchemaRegistry(cluster.registryUrl()));
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Map.of(
                    ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                    ProducerConfig.TRANSACTIONAL_ID_CONFIG, "local-cluster-test"),
                    new ByteArraySerializer(), new ByteArraySerializer())) {
                producer.initTransactions();
                producer.beginTransaction();
                producer.send(new ProducerRecord<>("models", serde.serialize("models", sent)));
                producer.commitTransaction();
            }
        }
        assertTrue(Files.isDirectory(data.resolve("kafka")), "a given data directory is kept");

        int port = Integer.parseInt(bootstrap.substring(bootstrap.lastIndexOf(':') + 1));
        try (LocalCluster cluster = LocalCluster.start(data, port, 0)) {
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers()))) {
                assertEquals(clusterId, admin.describeCluster().clusterId().get(), "the same cluster");
            }
            // a new registry process: the id in the record must be found again from the journal
            AvroSerde<ModelId> serde = new AvroSerde<>(ModelId.class, new HttpSchemaRegistry(cluster.registryUrl()));
            List<ModelId> read = new ArrayList<>();
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(Map.of(
                    ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers(),
                    ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"),
                    new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                consumer.assign(List.of(new TopicPartition("models", 0)));
                consumer.seekToBeginning(consumer.assignment());
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (read.isEmpty() && System.nanoTime() < deadline) {
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                        read.add(serde.deserialize("models", r.value()));
                    }
                }
            }
            assertEquals(List.of(sent), read);
        }
    }

    @Test
    void aTemporaryClusterLeavesNothingBehind() {
        Path data;
        try (LocalCluster cluster = LocalCluster.start(null, 0, 0)) {
            data = cluster.dataDirectory();
            assertTrue(cluster.isTemporary());
            assertTrue(Files.isDirectory(data));
        }
        assertFalse(Files.exists(data), "deleted on close: " + data);
    }

    @Test
    void aFolderThatIsNotABrokersIsRefused(@TempDir Path dir) throws Exception {
        Files.createDirectories(dir.resolve("kafka"));
        Files.writeString(dir.resolve("kafka/notes.txt"), "mine");
        HfpruneException e = assertThrows(HfpruneException.class, () -> LocalCluster.start(dir, 0, 0));
        assertTrue(e.getMessage().contains("not an hfprune broker's data directory"), e.getMessage());
        assertEquals("mine", Files.readString(dir.resolve("kafka/notes.txt")), "left as it was");
    }
}
