package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.common.DeadLetters;
import ai.hfprune.pipeline.common.GramChunks;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.embedded.EmbeddedKafka;
import ai.hfprune.pipeline.sampler.BatchPacker;
import ai.hfprune.pipeline.sampler.CalibrationSampler;
import ai.hfprune.pipeline.testing.BrokerFixture;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.StatsPartial;
import ai.hfprune.schemas.Structure;
import ai.hfprune.schemas.TokenBatch;
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

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sampler and a scorer on a real (embedded KRaft) broker, with stories260K and TinyStories: the partials equal
 * {@link ImportanceScorer} run directly on the batches of {@code hfprune score}; bad batches become dead letters; a
 * scorer that crashes in the middle of a transaction publishes nothing of it, and its successor redoes the batch.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SamplerScorerIntegrationTest {

    private static final int T = 32;
    private static final int B = 2;
    private static final int MAX_WINDOWS = 8;
    private static final EnumSet<Criterion> CRITERIA = EnumSet.of(Criterion.ENTROPY, Criterion.CE);
    private static final String SCOPE = "sampler-scorer-it";

    private static BrokerFixture fixture;
    private static EmbeddedKafka kafka;
    private static Checkpoint checkpoint;
    private static Path trainText;
    private static List<int[][]> scoreBatches;
    /** criterion|layer|structure → Σ over the batches, from ImportanceScorer directly. */
    private static Map<String, double[]> expected;
    private static int numLayers;
    /** The Gram statistics of the four batches, from ImportanceScorer directly, in the same passes. */
    private static GramStats expectedStats;

    @BeforeAll
    static void setUp() {
        fixture = BrokerFixture.start(SCOPE);
        kafka = fixture.kafka;
        checkpoint = fixture.checkpoint;
        trainText = Assets.require("data/tinystories/train-head-2MiB.txt");
        // what `hfprune score --seq-len 32 --max-windows 8 --batch-windows 2` scores
        int[][] windows = CalibrationData.readWindows(trainText, checkpoint::tokenizer, checkpoint.config().vocabSize(), T, MAX_WINDOWS);
        scoreBatches = CalibrationData.batches(windows, B);
        assertEquals(4, scoreBatches.size());
        expected = new HashMap<>();
        try (LlamaModel model = checkpoint.load()) {
            numLayers = model.layers().size();
            ImportanceScorer scorer = new ImportanceScorer(model);
            GramAccumulator gram = new GramAccumulator(model.manager(), numLayers);
            for (int[][] batch : scoreBatches) {
                Map<Criterion, Partial> scores = scorer.score(batch, CRITERIA, gram);
                scores.forEach((c, p) -> {
                    for (int l = 0; l < numLayers; l++) {
                        add(expected, c.id() + "|" + l + "|" + Structure.MLP, p.mlp()[l]);
                        add(expected, c.id() + "|" + l + "|" + Structure.HEADS, p.heads()[l]);
                    }
                });
            }
            expectedStats = gram.drain();
            gram.close();
        }
    }

    @AfterAll
    static void tearDown() {
        if (fixture != null) {
            fixture.close();
        }
    }

    private static PipelineConfig config(String prefix, String instance) {
        return fixture.config(prefix)
                .with("topic.partitions", "2")
                .with("seq.len", String.valueOf(T))
                .with("batch.windows", String.valueOf(B))
                .with("max.windows", String.valueOf(MAX_WINDOWS))
                .with("criteria", "entropy,ce")
                .with("instance.id", instance);
    }

    private static Topics createTopics(PipelineConfig config) {
        Topics topics = Topics.of(config);
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
            topics.createAll(admin, config.getInt("topic.partitions"), (short) 1);
        }
        return topics;
    }

    private static void sample(PipelineConfig config, Topics topics, SimpleMeterRegistry meters) throws InterruptedException {
        CalibrationSampler sampler = new CalibrationSampler(config, topics, checkpoint, List.of(trainText), false, meters);
        sampler.start();
        assertTrue(sampler.awaitCompletion(Duration.ofSeconds(30)), "the file run ends");
        assertTrue(sampler.failure().isEmpty(), () -> "sampler failed: " + sampler.failure().get());
        assertTrue(sampler.completed());
        assertEquals(4, sampler.batchesSent());
    }

    @Test
    void partialsEqualTheScorerRunDirectlyAndBadBatchesBecomeDeadLetters() throws Exception {
        PipelineConfig config = config("e2e.", "scorer-a");
        Topics topics = createTopics(config);
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        sample(config, topics, meters);

        // the batches on the topic are score's batches, in order, with stable ids
        List<TokenBatch> sent = readAll(topics.calibrationBatches.name(), "read_committed").stream()
                .map(r -> topics.calibrationBatches.valueSerde().deserializer().deserialize(r.topic(), r.value()))
                .sorted((a, b) -> Long.compare(a.getSequence(), b.getSequence())).toList();
        assertEquals(4, sent.size());
        ModelId model = new ModelId(checkpoint.name(), checkpoint.sha256());
        for (int i = 0; i < 4; i++) {
            assertEquals(BatchPacker.batchId(model.getSha256(), T, scoreBatches.get(i)), sent.get(i).getBatchId());
            assertEquals(List.of("entropy", "ce"), sent.get(i).getCriteria());
            assertEquals("train-head-2MiB.txt", sent.get(i).getSource());
        }
        assertEquals(4.0, meters.counter("hfprune_sampler_batches").count());
        assertEquals(4.0 * B * T, meters.counter("hfprune_sampler_tokens").count());
        assertTrue(meters.counter("hfprune_sampler_documents", "outcome", "sent").count() > 0);

        // four bad records among the good ones
        TokenBatch good = sent.get(0);
        TokenBatch otherModel = TokenBatch.newBuilder(good).setModel(new ModelId(model.getName(), "0".repeat(64))).build();
        TokenBatch outOfVocab = TokenBatch.newBuilder(good).setWindows(copy(good.getWindows())).build();
        outOfVocab.getWindows().get(1).set(7, checkpoint.config().vocabSize());
        Map<String, byte[]> bad = new HashMap<>();
        bad.put("garbage", "this is not avro".getBytes(StandardCharsets.UTF_8));
        bad.put("unknown-schema", new byte[] {0, 0, 0, 0x7f, 0x7f, 1, 2, 3, 4});
        bad.put("other-model", topics.calibrationBatches.valueSerde().serializer().serialize(topics.calibrationBatches.name(), otherModel));
        bad.put("out-of-vocab", topics.calibrationBatches.valueSerde().serializer().serialize(topics.calibrationBatches.name(), outOfVocab));
        produceRaw(topics.calibrationBatches.name(), bad);

        ScorerService scorer = new ScorerService(config, topics, checkpoint, meters);
        scorer.start();
        awaitTrue(() -> scorer.batchesScored() == 4 && scorer.deadLettered() == 4, Duration.ofSeconds(60),
                () -> "scored " + scorer.batchesScored() + ", dead letters " + scorer.deadLettered() + ", state " + scorer.state());
        assertTrue(meters.getMeters().stream().anyMatch(m -> m.getId().getName().startsWith("kafka.producer")
                && "e2e.scorer-scorer-a-producer".equals(m.getId().getTag("client.id"))), "Kafka client metrics of the producer");
        assertTrue(meters.getMeters().stream().anyMatch(m -> m.getId().getName().startsWith("kafka.consumer")
                && "e2e.scorer-scorer-a-consumer".equals(m.getId().getTag("client.id"))), "Kafka client metrics of the consumer");
        assertTrue(scorer.stop(Duration.ofSeconds(30)));
        assertEquals(ScorerService.State.STOPPED, scorer.state());

        // partials: one per batch, criterion, layer and structure, summing to the direct scores
        List<ConsumerRecord<byte[], byte[]>> records = readAll(topics.importancePartials.name(), "read_committed");
        int perBatch = CRITERIA.size() * numLayers * 2;
        assertEquals(4 * perBatch, records.size());
        Map<String, double[]> sums = checkedSums(topics, records, model, "scorer-a");
        assertSums(sums);

        // dead letters: as they came, with the reason and origin
        List<ConsumerRecord<byte[], byte[]>> dead = readAll(topics.deadLetters.name(), "read_committed");
        assertEquals(4, dead.size());
        Map<String, String> reasons = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : dead) {
            String key = new String(r.key(), StandardCharsets.UTF_8);
            assertTrue(java.util.Arrays.equals(bad.get(key), r.value()), "original bytes of " + key);
            assertEquals("scorer", DeadLetters.header(r.headers(), DeadLetters.SERVICE));
            assertEquals(topics.calibrationBatches.name(), DeadLetters.header(r.headers(), DeadLetters.SOURCE_TOPIC));
            assertNotNull(DeadLetters.header(r.headers(), DeadLetters.SOURCE_OFFSET));
            assertNotNull(DeadLetters.header(r.headers(), DeadLetters.SOURCE_PARTITION));
            reasons.put(key, DeadLetters.header(r.headers(), DeadLetters.REASON));
        }
        assertTrue(reasons.get("garbage").contains("wire format"), reasons.toString());
        assertTrue(reasons.get("unknown-schema").contains("unknown schema id"), reasons.toString());
        assertTrue(reasons.get("other-model").contains("is not the configured model"), reasons.toString());
        assertTrue(reasons.get("out-of-vocab").contains("outside the vocabulary"), reasons.toString());

        // meters
        assertEquals(4.0 * B * T, meters.get("hfprune_scorer_tokens").tag("instance", "scorer-a").counter().count());
        assertEquals(4.0 * perBatch, meters.get("hfprune_scorer_partials").tag("instance", "scorer-a").counter().count());
        assertEquals(4.0, meters.get("hfprune_dead_letters").tag("service", "scorer").tag("instance", "scorer-a").counter().count());
        assertEquals(4, meters.get("hfprune_scorer_batch_seconds").tag("instance", "scorer-a").timer().count());
    }

    @Test
    void aScorerThatCrashesMidTransactionPublishesNothingOfItAndItsSuccessorRedoesTheBatch() throws Exception {
        // a transaction per batch, so that two batches are committed before the crash (without statistics: with them a
        // transaction is a stats group, below)
        PipelineConfig config = config("crash.", "scorer-c").with("scorer.commit.interval.ms", "0").with("prune.compensate", "none");
        Topics topics = createTopics(config);
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        sample(config, topics, meters);
        int perBatch = CRITERIA.size() * numLayers * 2;
        ModelId model = new ModelId(checkpoint.name(), checkpoint.sha256());

        ScorerService first = new ScorerService(config, topics, checkpoint, meters).withRetryBackoff(Duration.ofMillis(50), Duration.ofMillis(200));
        first.crashAfterPartialsForTest(2L * perBatch + 3); // two batches committed, three partials of the third in flight
        first.start();
        assertTrue(first.awaitTermination(Duration.ofSeconds(60)), "the first scorer crashes");
        assertEquals(ScorerService.State.CRASHED, first.state());
        assertEquals(2, first.batchesScored());
        // the three partials are in the log, but only uncommitted readers see them
        assertEquals(2 * perBatch + 3, readAll(topics.importancePartials.name(), "read_uncommitted").size());
        assertEquals(2 * perBatch, readAll(topics.importancePartials.name(), "read_committed").size());

        ScorerService second = new ScorerService(config, topics, checkpoint, meters);
        second.start();
        awaitTrue(() -> second.batchesScored() == 2, Duration.ofSeconds(60),
                () -> "second scorer scored " + second.batchesScored() + ", state " + second.state());
        assertTrue(second.stop(Duration.ofSeconds(30)));

        List<ConsumerRecord<byte[], byte[]>> committed = readAll(topics.importancePartials.name(), "read_committed");
        assertEquals(4 * perBatch, committed.size(), "each batch exactly once");
        assertSums(checkedSums(topics, committed, model, "scorer-c"));
        assertEquals(4 * perBatch + 3, readAll(topics.importancePartials.name(), "read_uncommitted").size(),
                "the aborted partials stay in the log, marked aborted");
    }

    /**
     * With statistics (the default), in chunks of 1 KiB: a scorer that dies while sending a group's statistics commits
     * none of them, and its successor sends every batch's statistics exactly once; they sum to the direct ones.
     */
    @Test
    void aScorerThatCrashesWhileSendingStatisticsCommitsNoneAndItsSuccessorSendsThemOnce() throws Exception {
        PipelineConfig config = config("stats.", "scorer-s").with("stats.chunk.bytes", "1024");
        Topics topics = createTopics(config);
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        sample(config, topics, meters);
        ModelId model = new ModelId(checkpoint.name(), checkpoint.sha256());

        int perGroup = 0;
        for (int l = 0; l < numLayers; l++) {
            perGroup += GramChunks.layout(expectedStats.mlpDim(l), 1024).size() + GramChunks.layout(expectedStats.attnDim(l), 1024).size();
        }
        perGroup *= CRITERIA.size();
        int crashAt = perGroup / 2;
        ScorerService first = new ScorerService(config, topics, checkpoint, meters);
        first.crashAfterStatsChunksForTest(crashAt); // inside the first group's statistics
        first.start();
        assertTrue(first.awaitTermination(Duration.ofSeconds(60)), "the first scorer crashes");
        assertEquals(ScorerService.State.CRASHED, first.state());
        assertEquals(crashAt, readAll(topics.statsPartials.name(), "read_uncommitted").size(), "the chunks of the crashed transaction");
        assertEquals(0, readAll(topics.statsPartials.name(), "read_committed").size(), "are invisible");
        assertEquals(0, first.batchesScored());

        ScorerService second = new ScorerService(config, topics, checkpoint, meters);
        second.start();
        awaitTrue(() -> first.batchesScored() + second.batchesScored() == 4, Duration.ofSeconds(60),
                () -> "scored " + first.batchesScored() + " + " + second.batchesScored() + ", state " + second.state());
        assertTrue(second.stop(Duration.ofSeconds(30)));

        // every batch in exactly one committed group per criterion, every chunk of a group once
        Map<String, StatsPartial> chunks = new HashMap<>();
        Map<String, List<String>> groups = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : readAll(topics.statsPartials.name(), "read_committed")) {
            StatsPartial c = topics.statsPartials.valueSerde().deserializer().deserialize(r.topic(), r.value());
            assertEquals(Keys.modelCriterion(model, c.getCriterion()), new String(r.key(), StandardCharsets.UTF_8));
            String id = c.getCriterion() + "|" + c.getGroupId();
            assertTrue(chunks.put(id + "|" + c.getLayer() + "|" + c.getStructure() + "|" + c.getChunk(), c) == null, "a chunk twice");
            groups.put(id, c.getBatchIds());
            assertTrue(c.getChunks() > 1, "many chunks per matrix");
        }
        Set<String> batchIds = scoreBatches.stream().map(b -> BatchPacker.batchId(model.getSha256(), T, b)).collect(Collectors.toSet());
        for (Criterion criterion : CRITERIA) {
            List<String> covered = groups.entrySet().stream().filter(e -> e.getKey().startsWith(criterion.id() + "|"))
                    .flatMap(e -> e.getValue().stream()).sorted().toList();
            assertEquals(batchIds.stream().sorted().toList(), covered, criterion + ": each batch in one committed group");
            double[][] sums = new double[2 * numLayers][];
            for (StatsPartial c : chunks.values()) {
                if (c.getCriterion().equals(criterion.id())) {
                    int m = 2 * c.getLayer() + (c.getStructure() == Structure.MLP ? 0 : 1);
                    double[] full = new double[c.getDim() * c.getDim()];
                    GramChunks.unpack(GramChunks.fromBytes(c.getValues()), c.getDim(), c.getRowStart(), c.getRowEnd(), full);
                    if (sums[m] == null) {
                        sums[m] = new double[full.length];
                    }
                    for (int i = 0; i < full.length; i++) {
                        sums[m][i] += full[i];
                    }
                }
            }
            for (int l = 0; l < numLayers; l++) {
                assertSameGram(expectedStats.mlp()[l], sums[2 * l], criterion + " layer " + l + " MLP");
                assertSameGram(expectedStats.attn()[l], sums[2 * l + 1], criterion + " layer " + l + " attention");
            }
        }
        // each committed partial names the committed group that holds its batch
        for (ConsumerRecord<byte[], byte[]> r : readAll(topics.importancePartials.name(), "read_committed")) {
            ImportancePartial p = topics.importancePartials.valueSerde().deserializer().deserialize(r.topic(), r.value());
            List<String> group = groups.get(p.getCriterion() + "|" + p.getStatsGroup());
            assertNotNull(group, "partial of " + p.getBatchId() + " names an uncommitted group");
            assertTrue(group.contains(p.getBatchId()));
        }
        assertTrue(meters.get("hfprune_scorer_stats_bytes").tag("instance", "scorer-s").counter().count() > 0);
    }

    /** |a − e| ≤ 1e-9 · √(e_ii · e_jj) for every element (the chunks of a few groups sum in another order than one pass). */
    private static void assertSameGram(double[] e, double[] a, String what) {
        assertNotNull(a, what + " missing");
        assertEquals(e.length, a.length, what);
        int n = (int) Math.round(Math.sqrt(e.length));
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                assertTrue(Math.abs(a[i * n + j] - e[i * n + j]) <= 1e-9 * Math.sqrt(e[i * n + i] * e[j * n + j]),
                        what + " (" + i + ", " + j + "): " + a[i * n + j] + " vs " + e[i * n + j]);
            }
        }
    }

    // ---- helpers ----

    /** Checks every partial's fields and that each (batch, criterion, layer, structure) comes once; returns the sums. */
    private static Map<String, double[]> checkedSums(Topics topics, List<ConsumerRecord<byte[], byte[]>> records, ModelId model,
                                                     String scorerId) {
        Set<String> seen = new HashSet<>();
        Map<String, double[]> sums = new HashMap<>();
        Set<String> expectedIds = scoreBatches.stream().map(b -> BatchPacker.batchId(model.getSha256(), T, b)).collect(Collectors.toSet());
        for (ConsumerRecord<byte[], byte[]> r : records) {
            ImportancePartial p = topics.importancePartials.valueSerde().deserializer().deserialize(r.topic(), r.value());
            assertEquals(Keys.partial(model, p.getCriterion(), p.getLayer(), p.getStructure()), new String(r.key(), StandardCharsets.UTF_8));
            assertTrue(seen.add(p.getBatchId() + "|" + r.key().length + new String(r.key(), StandardCharsets.UTF_8)), "duplicate partial");
            assertTrue(expectedIds.contains(p.getBatchId()), "batch id of a sampled batch");
            assertEquals(model, p.getModel());
            assertEquals(numLayers, p.getNumLayers());
            assertEquals(B, p.getWindows());
            assertEquals((long) B * T, p.getTokens());
            assertEquals(scorerId, p.getScorerId());
            double[] v = p.getValues().stream().mapToDouble(Double::doubleValue).toArray();
            add(sums, p.getCriterion() + "|" + p.getLayer() + "|" + p.getStructure(), v);
        }
        return sums;
    }

    private static void assertSums(Map<String, double[]> sums) {
        assertEquals(expected.keySet(), sums.keySet());
        expected.forEach((key, e) -> {
            double[] a = sums.get(key);
            assertEquals(e.length, a.length, key);
            for (int i = 0; i < e.length; i++) {
                double tolerance = 1e-9 * Math.abs(e[i]);
                assertTrue(Math.abs(e[i] - a[i]) <= tolerance, key + "[" + i + "]: expected " + e[i] + ", got " + a[i]);
            }
            assertTrue(java.util.Arrays.stream(e).anyMatch(x -> x > 0), key + " is all zeros");
        });
    }

    private static void add(Map<String, double[]> sums, String key, double[] v) {
        double[] total = sums.computeIfAbsent(key, k -> new double[v.length]);
        for (int i = 0; i < v.length; i++) {
            total[i] += v[i];
        }
    }

    private static List<List<Integer>> copy(List<List<Integer>> windows) {
        List<List<Integer>> out = new ArrayList<>();
        windows.forEach(w -> out.add(new ArrayList<>(w)));
        return out;
    }

    private static void produceRaw(String topic, Map<String, byte[]> records) {
        Map<String, Object> p = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers(), ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            records.forEach((k, v) -> producer.send(new ProducerRecord<>(topic, k.getBytes(StandardCharsets.UTF_8), v)));
            producer.flush();
        }
    }

    /** Every record of the topic up to its end offsets (the last stable offsets for read_committed). */
    static List<ConsumerRecord<byte[], byte[]>> readAll(String topic, String isolation) {
        Map<String, Object> c = new HashMap<>();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
                    .map(p -> new TopicPartition(topic, p.partition())).toList();
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

    static void awaitTrue(BooleanSupplier condition, Duration timeout, java.util.function.Supplier<String> what)
            throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, () -> "timed out: " + what.get());
            Thread.sleep(50);
        }
    }
}
