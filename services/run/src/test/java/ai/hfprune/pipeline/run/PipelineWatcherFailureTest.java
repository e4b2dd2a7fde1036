package ai.hfprune.pipeline.run;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.testing.BrokerFixture;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The watcher on a real broker: it waits for its topics' partitions, and its death reaches whoever waits on it. */
class PipelineWatcherFailureTest {

    private static final AtomicInteger PREFIXES = new AtomicInteger();
    private static BrokerFixture fixture;

    @BeforeAll
    static void start() {
        fixture = BrokerFixture.start("watcher-failure-test");
    }

    @AfterAll
    static void stop() {
        fixture.close();
    }

    private static PipelineConfig config() {
        return fixture.config("watcher-" + PREFIXES.incrementAndGet() + ".");
    }

    private static void createTopics(Topics topics, int partitions) {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, fixture.kafka.bootstrapServers()))) {
            topics.createAll(admin, partitions, (short) 1);
        }
    }

    private static void sendGarbage(String topic, int partition) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, fixture.kafka.bootstrapServers(),
                ProducerConfig.MAX_BLOCK_MS_CONFIG, 15_000), new ByteArraySerializer(), new ByteArraySerializer())) {
            producer.send(new ProducerRecord<>(topic, partition, "x".getBytes(StandardCharsets.UTF_8),
                    "not avro".getBytes(StandardCharsets.UTF_8))).get(); // coverage is compacted: records need a key
        }
    }

    @Test
    void waitsForTopicsCreatedAfterItStartedAndWatchesEveryPartition() throws Exception {
        PipelineConfig config = config();
        Topics topics = Topics.of(config);
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        CompletableFuture<PipelineWatcher> starting = CompletableFuture.supplyAsync(
                () -> new PipelineWatcher(fixture.kafka.bootstrapServers(), topics, lines::add));
        Thread.sleep(2000);
        // asking for the partitions must not have created the topics (with the broker's default of one partition)
        assertFalse(starting.isDone(), "the watcher started before its topics existed");
        createTopics(topics, 4);
        try (PipelineWatcher watcher = starting.get(60, TimeUnit.SECONDS)) {
            sendGarbage(topics.coverage.name(), 3); // the last of the four partitions
            String line = lines.poll(30, TimeUnit.SECONDS);
            assertNotNull(line, "the watcher does not read partition 3");
            assertTrue(line.startsWith("skipped an unreadable record of " + topics.coverage.name()), line);
        }
    }

    @Test
    void topicsThatNeverGetPartitionsAreNamed() {
        Topics topics = Topics.of(config()); // never created
        HfpruneException e = assertThrows(HfpruneException.class,
                () -> new PipelineWatcher(fixture.kafka.bootstrapServers(), topics, line -> { }, Duration.ofSeconds(2)));
        assertTrue(e.getMessage().contains("found no partitions of " + topics.coverage.name()), e.getMessage());
    }

    @Test
    void aWatcherThatDiesFailsTheWaitAtOnceWithItsCause() throws Exception {
        Topics topics = Topics.of(config());
        createTopics(topics, 1);
        try (PipelineWatcher watcher = new PipelineWatcher(fixture.kafka.bootstrapServers(), topics, line -> {
            throw new IllegalStateException("the terminal is gone");
        })) {
            sendGarbage(topics.coverage.name(), 0);
            long start = System.nanoTime();
            HfpruneException e = assertThrows(HfpruneException.class, () -> watcher.nextResult(Duration.ofSeconds(20)));
            assertTrue(e.getMessage().contains("the terminal is gone"), e.getMessage());
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(10), "not at once");
        }
    }

    @Test
    void aPipelineRunFailsPromptlyWithTheWatchersCause(@TempDir Path out) throws Exception {
        PipelineConfig config = config()
                .with("topic.partitions", "1")
                .with("model", Assets.stories260K().toString())
                .with("data", Assets.require("data/tinystories/train-head-2MiB.txt").toString())
                .with("eval.data", Assets.require("data/tinystories/valid-hf-head.txt").toString())
                .with("eval.max.windows", "2")
                .with("seq.len", "32")
                .with("batch.windows", "4")
                .with("max.windows", "8")
                .with("coverage.min.tokens", "256")
                .with("prune.compensate", "none")
                .with("output.root", out.toString())
                .with("metrics.port", "-1");
        // the watcher's first report fails; the run's own lines go through
        try (PipelineRun run = PipelineRun.start(config, fixture.checkpoint, 1, false, line -> {
            if (line.startsWith("coverage")) {
                throw new IllegalStateException("the terminal is gone");
            }
        })) {
            long start = System.nanoTime();
            HfpruneException e = assertThrows(HfpruneException.class, () -> run.awaitResults(Duration.ofSeconds(90)));
            assertTrue(e.getMessage().contains("the pipeline watcher failed") && e.getMessage().contains("the terminal is gone"),
                    e.getMessage());
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(60), "not promptly");
        }
    }
}
