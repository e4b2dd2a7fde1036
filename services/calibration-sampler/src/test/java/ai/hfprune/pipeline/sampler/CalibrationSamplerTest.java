package ai.hfprune.pipeline.sampler;

import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.embedded.EmbeddedKafka;
import ai.hfprune.pipeline.testing.BrokerFixture;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.TokenBatch;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The sampler on a real broker: follow mode over the raw-text topic (carry-over, duplicates, offsets), and the rate limit. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class CalibrationSamplerTest {

    private static final String SCOPE = "calibration-sampler-test";
    private static final int T = 32;
    private static final int B = 2;

    private static BrokerFixture fixture;
    private static EmbeddedKafka kafka;
    private static Checkpoint checkpoint;
    private static ModelId model;
    private static List<String> docs;

    @BeforeAll
    static void setUp() {
        fixture = BrokerFixture.start(SCOPE);
        kafka = fixture.kafka;
        checkpoint = fixture.checkpoint;
        model = new ModelId(checkpoint.name(), checkpoint.sha256());
        docs = CalibrationData.readDocuments(Assets.require("data/tinystories/train-head-2MiB.txt")).subList(0, 30);
    }

    @AfterAll
    static void tearDown() {
        if (fixture != null) {
            fixture.close();
        }
    }

    private static PipelineConfig config(String prefix) {
        return fixture.config(prefix)
                .with("seq.len", String.valueOf(T))
                .with("batch.windows", String.valueOf(B))
                .with("criteria", "entropy")
                .with("instance.id", "sampler-test");
    }

    private static Topics createTopics(PipelineConfig config, int partitions) {
        Topics topics = Topics.of(config);
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
            topics.createAll(admin, partitions, (short) 1);
        }
        return topics;
    }

    @Test
    void followModeCarriesTokensOverSkipsDuplicatesAndCommitsOnlyWhatWasSent() throws Exception {
        PipelineConfig config = config("follow.");
        Topics topics = createTopics(config, 1);
        List<String> records = new ArrayList<>(docs.subList(0, 10));
        records.add(docs.get(2)); // duplicate
        records.add("   \n");     // empty
        records.add(docs.get(10));
        records.add("\n" + docs.get(5) + "  "); // duplicate once trimmed
        records.add(docs.get(11));
        records.add("The cat sat on the mat."); // (without it, these documents happen to fill exactly 62 batches)
        produceText(topics.rawText.name(), records);

        // what the sampler must send: the full batches of one packer over the records in order
        BatchPacker reference = new BatchPacker(model, checkpoint.tokenizer(), T, B, List.of("entropy"), 0);
        List<TokenBatch> expected = new ArrayList<>();
        long[] endOfRecord = new long[records.size()];
        for (int i = 0; i < records.size(); i++) {
            reference.add(records.get(i), topics.rawText.name(), expected::add);
            endOfRecord[i] = reference.streamTokens();
        }
        long sentTokens = reference.windowsInBatches() * T;
        assertTrue(reference.streamTokens() > sentTokens, "some tokens wait for more documents: " + reference.streamTokens() + " vs " + sentTokens + " in " + expected.size());
        int done = 0;
        while (done < records.size() && endOfRecord[done] <= sentTokens) {
            done++;
        }
        final int firstUnsent = done;
        assertTrue(firstUnsent > 0 && firstUnsent < records.size(), "some documents are done, some wait: " + firstUnsent);

        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        CalibrationSampler sampler = new CalibrationSampler(config, topics, checkpoint, List.of(), true, meters);
        sampler.start();
        awaitTrue(() -> sampler.batchesSent() == expected.size(), "batches sent: " + expected.size());
        Thread.sleep(300); // nothing more may come: the remainder waits for more documents
        assertEquals(expected.size(), sampler.batchesSent());
        assertTrue(sampler.isRunning());
        awaitTrue(() -> committed(config.get("topic.prefix") + "sampler", topics.rawText.name()) == firstUnsent,
                "raw-text offset committed up to the first document not fully sent (" + firstUnsent + ")");
        sampler.stop();
        assertFalse(sampler.isRunning());
        assertTrue(sampler.failure().isEmpty(), () -> "failed: " + sampler.failure().get());

        List<TokenBatch> onTopic = readBatches(topics);
        assertEquals(ids(expected), ids(onTopic));
        for (int i = 0; i < onTopic.size(); i++) {
            assertEquals(i, onTopic.get(i).getSequence());
            assertEquals(topics.rawText.name(), onTopic.get(i).getSource());
            assertEquals(B, onTopic.get(i).getWindows().size());
        }
        assertEquals(13.0, meters.counter("hfprune_sampler_documents", "outcome", "sent").count());
        assertEquals(2.0, meters.counter("hfprune_sampler_documents", "outcome", "duplicate").count());
        assertEquals(expected.size(), meters.counter("hfprune_sampler_batches").count());
        assertEquals((double) expected.size() * B * T, meters.counter("hfprune_sampler_tokens").count());
        assertEquals((long) expected.size() * B * T, sampler.tokensSent());
        assertEquals(firstUnsent, committed(config.get("topic.prefix") + "sampler", topics.rawText.name()), "after stop");

        // a restarted sampler goes on from the first document not fully sent, as a new stream
        List<String> more = docs.subList(12, 20);
        produceText(topics.rawText.name(), more);
        BatchPacker resumed = new BatchPacker(model, checkpoint.tokenizer(), T, B, List.of("entropy"), 0);
        List<TokenBatch> expectedAfter = new ArrayList<>();
        records.subList(firstUnsent, records.size()).forEach(d -> resumed.add(d, topics.rawText.name(), expectedAfter::add));
        more.forEach(d -> resumed.add(d, topics.rawText.name(), expectedAfter::add));
        CalibrationSampler again = new CalibrationSampler(config, topics, checkpoint, List.of(), true, new SimpleMeterRegistry());
        again.start();
        awaitTrue(() -> again.batchesSent() == expectedAfter.size(), "batches after the restart: " + expectedAfter.size());
        again.stop();
        List<TokenBatch> all = readBatches(topics);
        assertEquals(ids(expectedAfter), ids(all.subList(onTopic.size(), all.size())));
    }

    @Test
    void aFileRunHonoursTheRateLimit() throws Exception {
        PipelineConfig config = config("rate.").with("max.windows", "8").with("sampler.rate.batches.per.second", "10");
        Topics topics = createTopics(config, 2);
        Path file = Assets.require("data/tinystories/train-head-2MiB.txt");
        CalibrationSampler sampler = new CalibrationSampler(config, topics, checkpoint, List.of(file), false, new SimpleMeterRegistry());
        long t0 = System.nanoTime();
        sampler.start();
        assertTrue(sampler.awaitCompletion(Duration.ofSeconds(30)));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(sampler.completed());
        assertEquals(4, sampler.batchesSent());
        assertTrue(ms >= 290, "4 batches at 10/s take at least 300 ms, took " + ms);
        assertEquals(4, readBatches(topics).size());
    }

    // ---- helpers ----

    private static void produceText(String topic, List<String> values) {
        Map<String, Object> p = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers(), ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            values.forEach(v -> producer.send(new ProducerRecord<>(topic, null, v)));
            producer.flush();
        }
    }

    private static long committed(String group, String topic) {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            OffsetAndMetadata o = offsets.get(new TopicPartition(topic, 0));
            return o == null ? -1 : o.offset();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static List<TokenBatch> readBatches(Topics topics) {
        String topic = topics.calibrationBatches.name();
        Map<String, Object> c = new HashMap<>();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        List<TokenBatch> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic).stream().map(p -> new TopicPartition(topic, p.partition())).toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (partitions.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                assertTrue(System.nanoTime() < deadline);
                consumer.poll(Duration.ofMillis(200))
                        .forEach(r -> out.add(topics.calibrationBatches.valueSerde().deserializer().deserialize(topic, r.value())));
            }
        }
        return out; // in offset order within each partition
    }

    private static List<String> ids(List<TokenBatch> batches) {
        return batches.stream().map(TokenBatch::getBatchId).toList();
    }

    private static void awaitTrue(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, () -> "timed out: " + what);
            Thread.sleep(50);
        }
    }
}
