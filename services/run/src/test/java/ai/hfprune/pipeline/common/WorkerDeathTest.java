package ai.hfprune.pipeline.common;

import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.aggregator.AggregatorService;
import ai.hfprune.pipeline.pruner.PrunerService;
import ai.hfprune.pipeline.sampler.CalibrationSampler;
import ai.hfprune.pipeline.scorer.ScorerService;
import ai.hfprune.pipeline.testing.BrokerFixture;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each kind of worker death makes its service FAILED with the cause, and {@code /health} then answers 503: a fenced
 * scorer, a scorer whose device keeps failing, a pruner whose loop threw, a follow-mode sampler whose sends fail, a
 * Kafka Streams client that shut down. The faults come from outside (a twin's producer, the broker's limits, a
 * deleted topic) except the failing device, which the scorer's test hook stands in for.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class WorkerDeathTest {

    private static BrokerFixture fixture;

    @BeforeAll
    static void setUp() {
        fixture = BrokerFixture.start("worker-death-test");
    }

    @AfterAll
    static void tearDown() {
        if (fixture != null) {
            fixture.close();
        }
    }

    private static PipelineConfig config(String prefix) {
        return fixture.config(prefix).with("seq.len", "32").with("batch.windows", "2").with("max.windows", "8")
                .with("criteria", "entropy").with("prune.compensate", "none").with("instance.id", "death");
    }

    private static Topics topics(PipelineConfig config) {
        Topics topics = Topics.of(config);
        try (Admin admin = Admin.create(ClientConfigs.admin(fixture.kafka.bootstrapServers()))) {
            topics.createAll(admin, 1, (short) 1);
        }
        return topics;
    }

    @Test
    void aFencedScorerFails() throws Exception {
        PipelineConfig config = config("fenced.");
        Topics topics = topics(config);
        ScorerService scorer = new ScorerService(config, topics, fixture.checkpoint, new SimpleMeterRegistry());
        try (MetricsServer http = MetricsServer.of(config)) {
            http.watch(scorer);
            scorer.start();
            awaitStatus(scorer, PipelineService.Status.RUNNING);
            assertEquals(200, ServiceHealthEndpointTest.get(http, "/health/ready").statusCode());
            // a twin with the same transactional id: the scorer's next transaction (a dead letter here) is fenced
            try (KafkaProducer<byte[], byte[]> twin = new KafkaProducer<>(ClientConfigs.transactional(fixture.kafka.bootstrapServers(),
                    "twin", "fenced.scorer-death"), new ByteArraySerializer(), new ByteArraySerializer())) {
                twin.initTransactions();
                sendGarbage(topics.calibrationBatches.name());
                awaitStatus(scorer, PipelineService.Status.FAILED);
            }
            assertTrue(scorer.health().cause().getMessage().contains("fenced"), scorer.health().cause().toString());
            assertUnhealthy(http);
        } finally {
            scorer.stop(Duration.ofSeconds(30));
        }
        assertEquals(PipelineService.Status.FAILED, scorer.health().status(), "a stop after the failure keeps it FAILED");
    }

    @Test
    void aScorerWhoseDeviceKeepsFailingFails() throws Exception {
        PipelineConfig config = config("device.");
        Topics topics = topics(config);
        CalibrationSampler sampler = new CalibrationSampler(config, topics, fixture.checkpoint,
                List.of(Assets.require("data/tinystories/train-head-2MiB.txt")), false, new SimpleMeterRegistry());
        sampler.start();
        assertTrue(sampler.awaitCompletion(Duration.ofSeconds(60)));
        assertEquals(PipelineService.Status.STOPPED, sampler.health().status(), "a file run that is done has stopped, not failed");
        ScorerService scorer = new ScorerService(config, topics, fixture.checkpoint, new SimpleMeterRegistry())
                .withRetryBackoff(Duration.ofMillis(5), Duration.ofMillis(10));
        scorer.failScoringForTest(Long.MAX_VALUE);
        try (MetricsServer http = MetricsServer.of(config)) {
            http.watch(scorer);
            scorer.start();
            awaitStatus(scorer, PipelineService.Status.FAILED);
            assertTrue(scorer.health().cause().getMessage().contains("could not be scored"), scorer.health().cause().toString());
            assertUnhealthy(http);
        } finally {
            scorer.stop(Duration.ofSeconds(30));
        }
    }

    @Test
    void aPrunerWhoseLoopThrowsFails(@TempDir Path out) throws Exception {
        PipelineConfig config = config("pruner.")
                .with("eval.data", Assets.require("data/tinystories/valid-hf-head.txt").toString())
                .with("eval.max.windows", "1").with("output.root", out.toString());
        Topics topics = topics(config);
        PrunerService pruner = new PrunerService(config, topics, fixture.checkpoint, new SimpleMeterRegistry());
        try (MetricsServer http = MetricsServer.of(config)) {
            http.watch(pruner);
            pruner.start();
            assertEquals(PipelineService.Status.RUNNING, pruner.health().status());
            try (KafkaProducer<byte[], byte[]> twin = new KafkaProducer<>(ClientConfigs.transactional(fixture.kafka.bootstrapServers(),
                    "twin", "pruner.pruner-death"), new ByteArraySerializer(), new ByteArraySerializer())) {
                twin.initTransactions();
                sendGarbage(topics.pruneTriggers.name()); // dead-lettered in a transaction that is fenced
                awaitStatus(pruner, PipelineService.Status.FAILED);
            }
            String cause = pruner.health().cause().toString();
            assertTrue(cause.contains("Fenced") || cause.contains("old epoch"), cause); // the broker says either
            assertUnhealthy(http);
        } finally {
            pruner.stop(Duration.ofSeconds(30));
        }
    }

    @Test
    void aFollowModeSamplerWhoseSendsFailFails() throws Exception {
        PipelineConfig config = config("follow.");
        Topics topics = Topics.of(config);
        try (Admin admin = Admin.create(ClientConfigs.admin(fixture.kafka.bootstrapServers()))) {
            // a broker that takes no batch: calibration-batches made beforehand with a record limit of 100 bytes
            admin.createTopics(List.of(new NewTopic(topics.calibrationBatches.name(), 1, (short) 1)
                    .configs(Map.of("max.message.bytes", "100")))).all().get();
            topics.createAll(admin, 1, (short) 1);
        }
        CalibrationSampler sampler = new CalibrationSampler(config, topics, fixture.checkpoint, List.of(), true, new SimpleMeterRegistry());
        try (MetricsServer http = MetricsServer.of(config)) {
            http.watch(sampler);
            sampler.start();
            try (KafkaProducer<byte[], byte[]> raw = new KafkaProducer<>(ClientConfigs.producer(fixture.kafka.bootstrapServers(), "raw"),
                    new ByteArraySerializer(), new ByteArraySerializer())) {
                String story = "Once upon a time there was a little cat who liked to sit in the sun and watch the birds. ".repeat(20);
                raw.send(new ProducerRecord<>(topics.rawText.name(), story.getBytes(StandardCharsets.UTF_8))).get();
            }
            awaitStatus(sampler, PipelineService.Status.FAILED);
            assertTrue(sampler.health().cause().getMessage().contains("larger than the max message size"), sampler.health().cause().toString());
            assertUnhealthy(http);
        } finally {
            sampler.stop(Duration.ofSeconds(30));
        }
    }

    @Test
    void anAggregatorWhoseStreamsClientShutsDownFails() throws Exception {
        PipelineConfig config = config("streams.");
        Topics topics = topics(config);
        AggregatorService aggregator = new AggregatorService(config, topics, List.of(ModelInfo.of(fixture.checkpoint)),
                new SimpleMeterRegistry());
        try (MetricsServer http = MetricsServer.of(config)) {
            http.watch(aggregator);
            aggregator.start();
            assertEquals(PipelineService.Status.RUNNING, aggregator.health().status());
            assertEquals(200, ServiceHealthEndpointTest.get(http, "/health/ready").statusCode());
            try (Admin admin = Admin.create(ClientConfigs.admin(fixture.kafka.bootstrapServers()))) {
                admin.deleteTopics(List.of(topics.importancePartials.name())).all().get(); // an operator's mistake
            }
            awaitStatus(aggregator, PipelineService.Status.FAILED);
            assertUnhealthy(http);
        } finally {
            aggregator.stop(Duration.ofSeconds(30));
        }
    }

    private static void sendGarbage(String topic) throws Exception {
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(ClientConfigs.producer(fixture.kafka.bootstrapServers(), "garbage"),
                new ByteArraySerializer(), new ByteArraySerializer())) {
            p.send(new ProducerRecord<>(topic, "x".getBytes(StandardCharsets.UTF_8), "garbage".getBytes(StandardCharsets.UTF_8))).get();
        }
    }

    private static void assertUnhealthy(MetricsServer http) throws Exception {
        assertEquals(503, ServiceHealthEndpointTest.get(http, "/health").statusCode());
        assertEquals(503, ServiceHealthEndpointTest.get(http, "/health/live").statusCode());
        assertEquals(503, ServiceHealthEndpointTest.get(http, "/health/ready").statusCode());
    }

    private static void awaitStatus(PipelineService service, PipelineService.Status status) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (service.health().status() != status) {
            assertTrue(System.nanoTime() < deadline, () -> service.name() + " is " + service.health() + ", not " + status);
            Thread.sleep(50);
        }
    }
}
