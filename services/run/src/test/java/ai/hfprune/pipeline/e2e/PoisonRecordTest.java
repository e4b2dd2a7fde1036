package ai.hfprune.pipeline.e2e;

import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.aggregator.AggregatorService;
import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.DeadLetters;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.PipelineService;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.run.PipelineWatcher;
import ai.hfprune.pipeline.sampler.CalibrationSampler;
import ai.hfprune.pipeline.scorer.ScorerService;
import ai.hfprune.pipeline.testing.BrokerFixture;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneStatus;
import ai.hfprune.schemas.Structure;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * No record the broker accepts can stop the pipeline: a 60 MB garbage batch, a batch whose dead letter the broker
 * refuses, a valid 60 MB partial, a version whose snapshot is over the record limit. Each is dead-lettered or answered
 * FAILED, and the records after it are processed. (On the code before this test, the first two retried for ever and
 * the third shut Kafka Streams down: their producers' buffer.memory of 32 MiB was below the record.)
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class PoisonRecordTest {

    private static final int SIXTY_MB = 60_000_000;

    private static BrokerFixture fixture;

    @BeforeAll
    static void setUp() {
        fixture = BrokerFixture.start("poison-record-test");
    }

    @AfterAll
    static void tearDown() {
        if (fixture != null) {
            fixture.close();
        }
    }

    private static PipelineConfig config(String prefix) {
        return fixture.config(prefix).with("seq.len", "32").with("batch.windows", "2").with("max.windows", "8")
                .with("criteria", "entropy").with("prune.compensate", "none").with("instance.id", "poison");
    }

    private static Topics topics(PipelineConfig config, Map<String, String> deadLetterConfigs) throws Exception {
        Topics topics = Topics.of(config);
        try (Admin admin = Admin.create(ClientConfigs.admin(fixture.kafka.bootstrapServers()))) {
            if (!deadLetterConfigs.isEmpty()) {
                admin.createTopics(List.of(new NewTopic(topics.deadLetters.name(), 1, (short) 1).configs(deadLetterConfigs))).all().get();
            }
            topics.createAll(admin, 1, (short) 1);
        }
        return topics;
    }

    /** The sampler's 4 valid batches of train text, after whatever the test put on calibration-batches. */
    private static void sample(PipelineConfig config, Topics topics) throws InterruptedException {
        CalibrationSampler sampler = new CalibrationSampler(config, topics, fixture.checkpoint,
                List.of(Assets.require("data/tinystories/train-head-2MiB.txt")), false, new SimpleMeterRegistry());
        sampler.start();
        assertTrue(sampler.awaitCompletion(Duration.ofSeconds(60)));
        assertEquals(4, sampler.batchesSent());
    }

    @Test
    void aSixtyMegabyteGarbageBatchIsDeadLetteredAndTheBatchesAfterItAreScored() throws Exception {
        PipelineConfig config = config("garbage60.");
        Topics topics = topics(config, Map.of());
        byte[] garbage = new byte[SIXTY_MB];
        new Random(60).nextBytes(garbage);
        send(topics.calibrationBatches.name(), "big".getBytes(StandardCharsets.UTF_8), garbage);
        garbage = null;
        sample(config, topics);
        ScorerService scorer = new ScorerService(config, topics, fixture.checkpoint, new SimpleMeterRegistry())
                .withRetryBackoff(Duration.ofMillis(20), Duration.ofMillis(100));
        scorer.start();
        try {
            awaitTrue(() -> scorer.batchesScored() == 4 && scorer.deadLettered() == 1,
                    () -> "scored " + scorer.batchesScored() + ", dead " + scorer.deadLettered() + ", " + scorer.health());
        } finally {
            scorer.stop(Duration.ofSeconds(30));
        }
        ConsumerRecord<byte[], byte[]> dead = readAll(topics.deadLetters.name()).get(0);
        assertEquals(SIXTY_MB, dead.value().length, "it fits: carried as it came");
        assertNotNull(DeadLetters.header(dead.headers(), DeadLetters.REASON));
        assertEquals("0", DeadLetters.header(dead.headers(), DeadLetters.SOURCE_OFFSET));
    }

    @Test
    void aBatchWhoseDeadLetterTheBrokerRefusesIsDeadLetteredWithoutItsValue() throws Exception {
        PipelineConfig config = config("refused.");
        // a dead-letter topic that takes 2 KiB: the dead letter of an 8 KiB garbage batch fails its transaction every time
        Topics topics = topics(config, Map.of("max.message.bytes", "2048"));
        send(topics.calibrationBatches.name(), "big".getBytes(StandardCharsets.UTF_8), new byte[8192]);
        sample(config, topics);
        ScorerService scorer = new ScorerService(config, topics, fixture.checkpoint, new SimpleMeterRegistry())
                .withRetryBackoff(Duration.ofMillis(20), Duration.ofMillis(100));
        scorer.start();
        try {
            awaitTrue(() -> scorer.batchesScored() == 4 && scorer.deadLettered() == 1,
                    () -> "scored " + scorer.batchesScored() + ", dead " + scorer.deadLettered() + ", " + scorer.health());
        } finally {
            scorer.stop(Duration.ofSeconds(30));
        }
        assertEquals(PipelineService.Status.STOPPED, scorer.health().status());
        List<ConsumerRecord<byte[], byte[]>> dead = readAll(topics.deadLetters.name());
        assertEquals(1, dead.size());
        assertNull(dead.get(0).value(), "the value is left out");
        assertEquals("8192", DeadLetters.header(dead.get(0).headers(), DeadLetters.ORIGINAL_BYTES));
        String reason = DeadLetters.header(dead.get(0).headers(), DeadLetters.REASON);
        assertTrue(reason.contains("no retry mends") && reason.contains("left out"), reason);
        assertEquals(4 * 2 * fixture.checkpoint.config().numHiddenLayers(), readAll(topics.importancePartials.name()).size(),
                "every valid batch is scored once, the ones that shared the failed transaction included");
    }

    @Test
    void aValidSixtyMegabytePartialIsDeadLetteredAndTheAggregatorRunsOn() throws Exception {
        PipelineConfig config = config("partial60.");
        Topics topics = topics(config, Map.of());
        ModelInfo model = ModelInfo.of(fixture.checkpoint);
        AggregatorService aggregator = new AggregatorService(config, topics, List.of(model), new SimpleMeterRegistry());
        aggregator.start();
        try {
            int n = SIXTY_MB / 8;
            Double[] values = new Double[n];
            Arrays.fill(values, 1.0);
            ImportancePartial huge = ImportancePartial.newBuilder().setBatchId("huge").setModel(model.id()).setCriterion("entropy")
                    .setLayer(0).setNumLayers(model.numLayers()).setStructure(Structure.MLP).setWindows(1).setTokens(32)
                    .setValues(Arrays.asList(values)).setScorerId("test").setStatsGroup("").build();
            values = null;
            String topic = topics.importancePartials.name();
            byte[] bytes = topics.importancePartials.valueSerde().serializer().serialize(topic, huge);
            huge = null;
            assertTrue(bytes.length > SIXTY_MB, "a 60 MB record: " + bytes.length);
            send(topic, Keys.partial(model.id(), "entropy", 0, Structure.MLP).getBytes(StandardCharsets.UTF_8), bytes);
            bytes = null;
            List<ConsumerRecord<byte[], byte[]>> dead = awaitRecords(topics.deadLetters.name(), 1);
            String reason = DeadLetters.header(dead.get(0).headers(), DeadLetters.REASON);
            assertTrue(reason.contains("vector of " + n + " values"), reason);
            assertTrue(dead.get(0).value().length > SIXTY_MB, "carried as it came");
            Thread.sleep(2000); // a commit interval and more: the transaction with it committed, Streams still runs
            assertEquals(PipelineService.Status.RUNNING, aggregator.health().status(), () -> aggregator.health().toString());
        } finally {
            aggregator.stop(Duration.ofSeconds(30));
        }
    }

    @Test
    void aVersionWhoseSnapshotIsOverTheRecordLimitIsAnsweredFailed() throws Exception {
        // 4 KiB stands in for a model whose snapshot exceeds 64 MiB; stories260K's takes more than that
        PipelineConfig config = config("limit.").with("record.max.bytes", "4096").with("coverage.min.tokens", "64");
        Topics topics = topics(config, Map.of());
        AggregatorService aggregator = new AggregatorService(config, topics, List.of(ModelInfo.of(fixture.checkpoint)),
                new SimpleMeterRegistry());
        ScorerService scorer = new ScorerService(config, topics, fixture.checkpoint, new SimpleMeterRegistry());
        try (PipelineWatcher watcher = new PipelineWatcher(fixture.kafka.bootstrapServers(), topics, line -> { })) {
            aggregator.start();
            scorer.start();
            sample(config, topics);
            PruneResult result = watcher.nextResult(Duration.ofSeconds(90));
            assertNotNull(result, "a result for the version");
            assertEquals(PruneStatus.FAILED, result.getStatus());
            assertEquals(1, result.getVersion());
            assertTrue(result.getError().contains("record.max.bytes (4096)"), result.getError());
            assertTrue(readAll(topics.pruneTriggers.name()).isEmpty(), "no trigger was sent");
            assertEquals(PipelineService.Status.RUNNING, aggregator.health().status(), () -> aggregator.health().toString());
        } finally {
            scorer.stop(Duration.ofSeconds(30));
            aggregator.stop(Duration.ofSeconds(30));
        }
    }

    // ---- helpers ----

    private static void send(String topic, byte[] key, byte[] value) throws Exception {
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(ClientConfigs.producer(fixture.kafka.bootstrapServers(), "poison"),
                new ByteArraySerializer(), new ByteArraySerializer())) {
            p.send(new ProducerRecord<>(topic, key, value)).get();
        }
    }

    private static List<ConsumerRecord<byte[], byte[]>> awaitRecords(String topic, int n) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (true) {
            List<ConsumerRecord<byte[], byte[]>> records = readAll(topic);
            if (records.size() >= n) {
                return records;
            }
            assertTrue(System.nanoTime() < deadline, "timed out waiting for " + n + " records on " + topic);
            Thread.sleep(200);
        }
    }

    private static List<ConsumerRecord<byte[], byte[]>> readAll(String topic) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(ClientConfigs.reader(fixture.kafka.bootstrapServers()),
                new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic).stream().map(x -> new TopicPartition(topic, x.partition())).toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (partitions.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                assertTrue(System.nanoTime() < deadline, "reading " + topic + " timed out");
                consumer.poll(Duration.ofMillis(200)).forEach(out::add);
            }
        }
        return out;
    }

    private static void awaitTrue(BooleanSupplier condition, Supplier<String> what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, () -> "timed out: " + what.get());
            Thread.sleep(50);
        }
    }
}
