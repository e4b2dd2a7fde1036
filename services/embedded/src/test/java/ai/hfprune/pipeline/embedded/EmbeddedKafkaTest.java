package ai.hfprune.pipeline.embedded;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Exactly-once semantics and lifecycle of the in-process KRaft broker. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class EmbeddedKafkaTest {

    private static EmbeddedKafka kafka;

    @BeforeAll
    static void startBroker() {
        long t0 = System.nanoTime();
        kafka = EmbeddedKafka.start();
        System.out.printf("EmbeddedKafka.start() took %d ms (%s)%n", millisSince(t0), kafka);
    }

    @AfterAll
    static void stopBroker() {
        if (kafka != null) {
            Path dir = kafka.dataDirectory();
            long t0 = System.nanoTime();
            kafka.close();
            System.out.printf("EmbeddedKafka.close() took %d ms%n", millisSince(t0));
            assertFalse(Files.exists(dir), "data directory deleted on close");
            kafka.close(); // idempotent
        }
    }

    @Test
    void transactionalProducerAndReadCommittedConsumer() throws Exception {
        String topic = "eos-tx";
        createTopic(kafka, topic, 4);

        Map<String, Object> producerProps = new HashMap<>();
        producerProps.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        producerProps.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "embedded-kafka-test-tx");
        producerProps.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        producerProps.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, String> producer =
                     new KafkaProducer<>(producerProps, new StringSerializer(), new StringSerializer())) {
            producer.initTransactions();

            producer.beginTransaction();
            for (int i = 0; i < 20; i++) {
                producer.send(new ProducerRecord<>(topic, "k" + (i % 5), "committed-" + i));
            }
            producer.commitTransaction();

            producer.beginTransaction();
            for (int i = 0; i < 20; i++) {
                producer.send(new ProducerRecord<>(topic, "k" + (i % 5), "aborted-" + i));
            }
            producer.flush(); // the aborted records really reach the log
            producer.abortTransaction();

            // A last committed transaction after the aborted one: the consumer must read past the abort marker.
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, "k0", "committed-last"));
            producer.commitTransaction();
        }

        Map<String, List<String>> byKey = new TreeMap<>();
        for (ConsumerRecord<String, String> r : readAll(kafka, topic, "read_committed", 21)) {
            byKey.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
        }
        Map<String, List<String>> expected = new TreeMap<>();
        for (int i = 0; i < 20; i++) {
            expected.computeIfAbsent("k" + (i % 5), k -> new ArrayList<>()).add("committed-" + i);
        }
        expected.get("k0").add("committed-last");
        assertEquals(expected, byKey, "read_committed sees exactly the committed records, in order per key");

        // read_uncommitted does see the aborted records: they were written, just not committed.
        List<ConsumerRecord<String, String>> all = readAll(kafka, topic, "read_uncommitted", 41);
        assertEquals(41, all.size());
        assertEquals(20, all.stream().filter(r -> r.value().startsWith("aborted-")).count());
    }

    @Test
    void kafkaStreamsExactlyOnceV2() throws Exception {
        String in = "streams-in";
        String out = "streams-out";
        createTopic(kafka, in, 4);
        createTopic(kafka, out, 4);

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(in, Consumed.with(Serdes.String(), Serdes.String()))
                .mapValues(v -> v.toUpperCase())
                .to(out, Produced.with(Serdes.String(), Serdes.String()));

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "embedded-kafka-test-streams");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        props.put(StreamsConfig.STATE_DIR_CONFIG, streamsStateDir.toString());
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        Map<String, Object> producerProps = Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers(),
                ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaStreams streams = new KafkaStreams(builder.build(), props)) {
            streams.start();
            try (KafkaProducer<String, String> producer =
                         new KafkaProducer<>(producerProps, new StringSerializer(), new StringSerializer())) {
                for (int i = 0; i < 40; i++) {
                    producer.send(new ProducerRecord<>(in, "key" + (i % 8), "value-" + i));
                }
            }
            Map<String, List<String>> byKey = new TreeMap<>();
            for (ConsumerRecord<String, String> r : readAll(kafka, out, "read_committed", 40)) {
                byKey.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
            }
            Map<String, List<String>> expected = new TreeMap<>();
            for (int i = 0; i < 40; i++) {
                expected.computeIfAbsent("key" + (i % 8), k -> new ArrayList<>()).add("VALUE-" + i);
            }
            assertEquals(expected, byKey);
            streams.close(Duration.ofSeconds(20));
            assertEquals(KafkaStreams.State.NOT_RUNNING, streams.state());
        }
    }

    @TempDir
    static Path streamsStateDir;

    @Test
    void moreBrokersInTheSameJvmDoNotClash() throws Exception {
        // two more at once (while the first one runs) ...
        long t0 = System.nanoTime();
        CompletableFuture<EmbeddedKafka> f2 = EmbeddedKafka.startAsync(Map.of("num.partitions", "3"), Duration.ofSeconds(60));
        CompletableFuture<EmbeddedKafka> f3 = EmbeddedKafka.startAsync(Map.of(), Duration.ofSeconds(60));
        try (EmbeddedKafka second = f2.get(90, TimeUnit.SECONDS); EmbeddedKafka third = f3.get(90, TimeUnit.SECONDS)) {
            System.out.printf("two concurrent EmbeddedKafka.startAsync() took %d ms%n", millisSince(t0));
            List<EmbeddedKafka> all = List.of(kafka, second, third);
            assertEquals(3, all.stream().map(EmbeddedKafka::bootstrapServers).distinct().count());
            assertEquals(3, all.stream().map(EmbeddedKafka::clusterId).distinct().count());
            assertEquals(3, all.stream().map(EmbeddedKafka::nodeId).distinct().count());
            assertEquals(3, all.stream().map(EmbeddedKafka::dataDirectory).distinct().count());

            // Same topic name on each: independent clusters.
            createTopic(second, "shared-name", 2);
            createTopic(third, "shared-name", 3);
            createTopic(kafka, "shared-name", 4);
            assertEquals(2, partitions(second, "shared-name"));
            assertEquals(3, partitions(third, "shared-name"));
            assertEquals(4, partitions(kafka, "shared-name"));
            produceAndCount(second, "shared-name");

            Path secondDir = second.dataDirectory();
            long t1 = System.nanoTime();
            second.close();
            System.out.printf("EmbeddedKafka.close() of the second broker took %d ms%n", millisSince(t1));
            assertTrue(second.isClosed());
            assertFalse(Files.exists(secondDir));
            produceAndCount(third, "shared-name"); // the others are unaffected
        }
        // ... and one after another
        try (EmbeddedKafka fourth = EmbeddedKafka.start()) {
            createTopic(fourth, "t", 1);
            produceAndCount(fourth, "t");
        }
        produceAndCount(kafka, "shared-name");
    }

    @Test
    void lostPortRacesAreRetriedWithoutKillingTheJvm() throws Exception {
        // Kafka halts the JVM when its controller listener cannot bind; EmbeddedKafka must survive that.
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            int port = taken.getLocalPort();
            AtomicInteger picks = new AtomicInteger();
            IntFunction<int[]> picker = n -> switch (picks.incrementAndGet()) {
                case 1 -> new int[] {port, freePort()};  // client listener port taken
                case 2 -> new int[] {freePort(), port};  // controller listener port taken
                default -> new int[] {freePort(), freePort()};
            };
            try (EmbeddedKafka k = EmbeddedKafka.start(Map.of(), Duration.ofSeconds(60), picker)) {
                assertEquals(3, picks.get());
                createTopic(k, "after-retry", 1);
                produceAndCount(k, "after-retry");
            }
        }
    }

    @Test
    void largeRecordsUpToTheBrokerLimit() throws Exception {
        String topic = "large";
        createTopic(kafka, topic, 1);
        byte[] big = new byte[20 * 1024 * 1024];
        new Random(7).nextBytes(big);
        Map<String, Object> producerProps = Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers(),
                ProducerConfig.MAX_REQUEST_SIZE_CONFIG, EmbeddedKafka.MAX_MESSAGE_BYTES,
                ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
        try (KafkaProducer<String, byte[]> p = new KafkaProducer<>(producerProps, new StringSerializer(), new ByteArraySerializer())) {
            p.send(new ProducerRecord<>(topic, "snapshot", big)).get(30, TimeUnit.SECONDS);
        }
        Map<String, Object> consumerProps = Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers(),
                ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, EmbeddedKafka.MAX_MESSAGE_BYTES,
                ConsumerConfig.FETCH_MAX_BYTES_CONFIG, EmbeddedKafka.MAX_MESSAGE_BYTES);
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(consumerProps, new StringDeserializer(), new ByteArrayDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            List<ConsumerRecord<String, byte[]>> got = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (got.isEmpty() && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            assertEquals(1, got.size());
            assertArrayEquals(big, got.get(0).value());
        }
    }

    @Test
    void managedSettingsCannotBeOverridden() {
        assertThrows(IllegalArgumentException.class, () -> EmbeddedKafka.start(Map.of("listeners", "PLAINTEXT://:9092")));
    }

    // ------------------------------------------------------------------------------------------

    private static void createTopic(EmbeddedKafka k, String topic, int partitions) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, k.bootstrapServers()))) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
    }

    private static int partitions(EmbeddedKafka k, String topic) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, k.bootstrapServers()))) {
            TopicDescription d = admin.describeTopics(Set.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS).get(topic);
            return d.partitions().size();
        }
    }

    private static void produceAndCount(EmbeddedKafka k, String topic) throws Exception {
        int before;
        try (KafkaConsumer<String, String> c = consumer(k, "read_committed")) {
            before = (int) c.partitionsFor(topic).stream()
                    .mapToLong(p -> c.endOffsets(List.of(new TopicPartition(topic, p.partition())))
                            .values().iterator().next())
                    .sum();
        }
        try (KafkaProducer<String, String> p = new KafkaProducer<>(
                Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, k.bootstrapServers()),
                new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, "k" + i, "v" + i)).get(30, TimeUnit.SECONDS);
            }
        }
        assertEquals(before + 10, readAll(k, topic, "read_committed", before + 10).size());
    }

    private static KafkaConsumer<String, String> consumer(EmbeddedKafka k, String isolation) {
        Map<String, Object> props = new HashMap<>();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, k.bootstrapServers());
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        return new KafkaConsumer<>(props, new StringDeserializer(), new StringDeserializer());
    }

    /** Reads a whole topic (no group: assign all partitions) until {@code expected} records or 30 s. */
    private static List<ConsumerRecord<String, String>> readAll(EmbeddedKafka k, String topic, String isolation,
                                                                int expected) {
        List<ConsumerRecord<String, String>> records = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(k, isolation)) {
            List<TopicPartition> tps = c.partitionsFor(topic).stream()
                    .map(p -> new TopicPartition(topic, p.partition()))
                    .toList();
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (records.size() < expected && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(records::add);
            }
            // a little longer, to catch records that should not be there
            c.poll(Duration.ofMillis(300)).forEach(records::add);
        }
        return records;
    }

    private static int freePort() {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            return s.getLocalPort();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static long millisSince(long t0) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    }
}
