package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.common.DeadLetters;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.embedded.EmbeddedKafka;
import ai.hfprune.pipeline.sampler.CalibrationSampler;
import ai.hfprune.pipeline.testing.BrokerFixture;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.StatsPartial;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A scorer's failure handling on a real broker: retries with backoff, a poisonous batch, a failed transaction, fencing by a twin. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ScorerServiceFailureTest {

    private static final String SCOPE = "scorer-failure-test";

    private static BrokerFixture fixture;
    private static EmbeddedKafka kafka;
    private static Checkpoint checkpoint;
    private static Path trainText;
    private static int perBatch;

    @BeforeAll
    static void setUp() {
        fixture = BrokerFixture.start(SCOPE);
        kafka = fixture.kafka;
        checkpoint = fixture.checkpoint;
        trainText = Assets.require("data/tinystories/train-head-2MiB.txt");
        perBatch = 2 * checkpoint.config().numHiddenLayers(); // one criterion: MLP and HEADS per layer
    }

    @AfterAll
    static void tearDown() {
        if (fixture != null) {
            fixture.close();
        }
    }

    private static PipelineConfig config(String prefix, String instance) {
        return fixture.config(prefix)
                .with("seq.len", "32")
                .with("batch.windows", "2")
                .with("max.windows", "8")
                .with("criteria", "entropy")
                .with("instance.id", instance);
    }

    private static Topics sampled(PipelineConfig config, int partitions) throws InterruptedException {
        Topics topics = Topics.of(config);
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
            topics.createAll(admin, partitions, (short) 1);
        }
        CalibrationSampler sampler = new CalibrationSampler(config, topics, checkpoint, List.of(trainText), false, new SimpleMeterRegistry());
        sampler.start();
        assertTrue(sampler.awaitCompletion(Duration.ofSeconds(30)));
        assertEquals(4, sampler.batchesSent());
        return topics;
    }

    @Test
    void failedScoringIsRetriedWithBackoffAndAPoisonousBatchIsDeadLettered() throws Exception {
        PipelineConfig config = config("retry.", "retrier");
        Topics topics = sampled(config, 1); // one partition: the batches come in order
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        ScorerService scorer = new ScorerService(config, topics, checkpoint, meters)
                .withRetryBackoff(Duration.ofMillis(20), Duration.ofMillis(100));
        // the first batch fails every attempt (and is given up), the next one twice (and then goes through)
        scorer.failScoringForTest(ScorerService.MAX_SCORING_ATTEMPTS + 2);
        long t0 = System.nanoTime();
        scorer.start();
        long ms;
        try {
            awaitTrue(() -> scorer.batchesScored() == 3 && scorer.deadLettered() == 1,
                    () -> "scored " + scorer.batchesScored() + ", dead " + scorer.deadLettered() + ", " + scorer.state());
            ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        } finally {
            assertTrue(scorer.stop(Duration.ofSeconds(30)));
        }
        assertTrue(ms >= 20 + 40 + 80 + 100 + 20 + 40, "backoff waited, took " + ms + " ms");
        assertEquals(ScorerService.MAX_SCORING_ATTEMPTS + 2.0,
                meters.get("hfprune_scorer_failures").tag("instance", "retrier").counter().count());

        List<ConsumerRecord<byte[], byte[]>> dead = readAll(topics.deadLetters.name());
        assertEquals(1, dead.size());
        String reason = DeadLetters.header(dead.get(0).headers(), DeadLetters.REASON);
        assertTrue(reason.startsWith("scoring failed " + ScorerService.MAX_SCORING_ATTEMPTS + " times"), reason);
        assertTrue(reason.contains("injected scoring failure"), reason);

        List<ConsumerRecord<byte[], byte[]>> partials = readAll(topics.importancePartials.name());
        assertEquals(3 * perBatch, partials.size(), "each of the other batches once");
        assertEquals(3 * perBatch, distinctPartials(topics, partials));
    }

    /**
     * With a commit interval of 0 every batch is its own transaction, committed while the next batch is scored: the
     * first transaction fails while the second batch is being scored, which is then dropped and scored again.
     */
    @Test
    void aFailedTransactionIsRetriedAndTheBatchScoredMeanwhileIsScoredAgain() throws Exception {
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        // without statistics: with them a transaction is a stats group, not a commit interval's batches
        transactionsFailTwice(config("txn.", "committer").with("scorer.commit.interval.ms", "0").with("prune.compensate", "none"), meters);
        assertEquals(4.0, meters.get("hfprune_scorer_transactions").tag("instance", "committer").counter().count(),
                "one transaction per batch");
    }

    /**
     * With the default interval the batches of a poll share a transaction; a failed one is retried as a whole. With
     * statistics (the default) the transaction is a stats group: its statistics are committed once, for every batch.
     */
    @Test
    void aFailedGroupTransactionIsRetriedAsAWhole() throws Exception {
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        Topics topics = transactionsFailTwice(config("group.", "grouper").with("scorer.commit.interval.ms", "60000"), meters);
        double transactions = meters.get("hfprune_scorer_transactions").tag("instance", "grouper").counter().count();
        assertTrue(transactions >= 1 && transactions < 4, "batches share transactions: " + transactions + " for 4 batches");
        Set<String> chunks = new HashSet<>();
        Map<String, List<String>> groups = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : readAll(topics.statsPartials.name())) {
            StatsPartial c = topics.statsPartials.valueSerde().deserializer().deserialize(r.topic(), r.value());
            assertTrue(chunks.add(c.getGroupId() + "|" + c.getLayer() + "|" + c.getStructure() + "|" + c.getChunk()), "a chunk twice");
            groups.put(c.getGroupId(), c.getBatchIds());
        }
        List<String> batches = groups.values().stream().flatMap(List::stream).toList();
        assertEquals(4, batches.size(), "the statistics of every batch, once: " + groups);
        assertEquals(4, new HashSet<>(batches).size());
        assertEquals(transactions, (double) groups.size(), "a group per committed transaction");
    }

    private Topics transactionsFailTwice(PipelineConfig config, SimpleMeterRegistry meters) throws Exception {
        Topics topics = sampled(config, 1); // one partition: the batches come in order
        ScorerService scorer = new ScorerService(config, topics, checkpoint, meters)
                .withRetryBackoff(Duration.ofMillis(20), Duration.ofMillis(100));
        scorer.failTransactionsForTest(2);
        scorer.start();
        try {
            awaitTrue(() -> scorer.batchesScored() == 4, () -> "scored " + scorer.batchesScored() + ", " + scorer.state());
        } finally {
            assertTrue(scorer.stop(Duration.ofSeconds(30)));
        }
        assertEquals(ScorerService.State.STOPPED, scorer.state());
        assertEquals(2.0, meters.get("hfprune_scorer_failures").tag("instance", scorer.instanceId()).counter().count());
        List<ConsumerRecord<byte[], byte[]>> partials = readAll(topics.importancePartials.name());
        assertEquals(4 * perBatch, partials.size(), "the aborted attempts are invisible; every batch is committed once");
        assertEquals(4 * perBatch, distinctPartials(topics, partials));
        assertEquals(0, readAll(topics.deadLetters.name()).size());
        return topics;
    }

    @Test
    void aSecondInstanceWithTheSameIdFencesTheFirst() throws Exception {
        PipelineConfig config = config("fence.", "twin");
        Topics topics = sampled(config, 2);
        ScorerService first = new ScorerService(config, topics, checkpoint, new SimpleMeterRegistry());
        first.start();
        awaitTrue(() -> first.batchesScored() == 4, () -> "first scored " + first.batchesScored());

        ScorerService second = new ScorerService(config, topics, checkpoint, new SimpleMeterRegistry());
        second.start(); // initTransactions: the first instance's producer is fenced from now on
        awaitTrue(() -> second.state() == ScorerService.State.RUNNING, () -> "second " + second.state());

        // a batch on each partition: whichever partition the first instance still holds, it must try to commit
        ConsumerRecord<byte[], byte[]> batch = readAll(topics.calibrationBatches.name()).get(0);
        Map<String, Object> p = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers(), ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (int partition = 0; partition < 2; partition++) {
                producer.send(new ProducerRecord<>(topics.calibrationBatches.name(), partition, batch.key(), batch.value()));
            }
            producer.flush();
        }

        assertTrue(first.awaitTermination(Duration.ofSeconds(60)), "the fenced instance stops");
        assertEquals(ScorerService.State.FENCED, first.state(), () -> "failure: " + first.failure().orElse(null));
        assertEquals(4, first.batchesScored());
        awaitTrue(() -> second.batchesScored() == 2, () -> "second scored " + second.batchesScored() + ", " + second.state());
        assertTrue(second.stop(Duration.ofSeconds(30)));
        assertEquals(ScorerService.State.STOPPED, second.state());

        assertEquals(6 * perBatch, readAll(topics.importancePartials.name()).size(), "nothing of the fenced attempt is committed");
    }

    // ---- helpers ----

    private static long distinctPartials(Topics topics, List<ConsumerRecord<byte[], byte[]>> records) {
        Set<String> seen = new HashSet<>();
        for (ConsumerRecord<byte[], byte[]> r : records) {
            ImportancePartial p = topics.importancePartials.valueSerde().deserializer().deserialize(r.topic(), r.value());
            seen.add(p.getBatchId() + "|" + p.getCriterion() + "|" + p.getLayer() + "|" + p.getStructure());
        }
        return seen.size();
    }

    private static List<ConsumerRecord<byte[], byte[]>> readAll(String topic) {
        Map<String, Object> c = new HashMap<>();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic).stream().map(x -> new TopicPartition(topic, x.partition())).toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (partitions.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                assertTrue(System.nanoTime() < deadline, "reading " + topic + " timed out");
                consumer.poll(Duration.ofMillis(200)).forEach(out::add);
            }
        }
        return out;
    }

    private static void awaitTrue(BooleanSupplier condition, Supplier<String> what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, () -> "timed out: " + what.get());
            Thread.sleep(50);
        }
    }
}
