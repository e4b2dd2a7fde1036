package ai.hfprune.pipeline.e2e;

import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.aggregator.AggregatorService;
import ai.hfprune.pipeline.common.DeadLetters;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.pruner.StatsReader;
import ai.hfprune.pipeline.run.PipelineRun;
import ai.hfprune.pipeline.run.PipelineWatcher;
import ai.hfprune.pipeline.sampler.CalibrationSampler;
import ai.hfprune.pipeline.sampler.DocumentFiles;
import ai.hfprune.pipeline.scorer.ScorerService;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneStatus;
import ai.hfprune.schemas.PruneTrigger;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pipeline on a real broker (in-process KRaft, or {@code -Dkafka.bootstrap}): it must produce exactly what the
 * single-process commands produce, survive a scorer that dies mid-transaction, and route bad records to the
 * dead-letter topic without losing or double-counting anything.
 */
class PipelineEndToEndTest {

    private static Brokers.Broker broker;
    private static Checkpoint checkpoint;
    private static LlamaModel model;
    private static PipelineEquivalence.Reference expected;

    @BeforeAll
    static void start() {
        broker = Brokers.start();
        checkpoint = Checkpoint.open(Assets.stories260K());
        model = checkpoint.load();
        expected = PipelineEquivalence.singleProcess(checkpoint, model);
    }

    @AfterAll
    static void stop() {
        model.close();
        checkpoint.close();
        broker.close();
    }

    /**
     * Two scorers on four partitions: the aggregated sums, the Gram statistics, the kept set and the compensated model
     * equal {@code score} and {@code prune --compensate lstsq}.
     */
    static void assertPipelineEqualsSingleProcess(String bootstrap, Path out, Checkpoint checkpoint, LlamaModel model,
                                                  PipelineEquivalence.Reference expected) throws Exception {
        PipelineConfig config = PipelineEquivalence.config(bootstrap, out);
        try (PipelineRun run = PipelineRun.start(config, checkpoint, 2, false, line -> { })) {
            List<PruneResult> results = run.awaitResults(Duration.ofMinutes(5));
            assertEquals(1, results.size());
            PruneTrigger trigger = run.watcher().nextTrigger(Duration.ofSeconds(10));
            assertNotNull(trigger);
            PipelineEquivalence.assertSameSums(expected.partial(), trigger.getSnapshot());
            assertEquals(expected.stats().tokens(), trigger.getSnapshot().getStatsTokens());
            assertEquals(expected.stats().tokens(), trigger.getSnapshot().getStatsSensitivityTokens());
            assertEquals(0, trigger.getSnapshot().getStatsGroupsDropped());
            PipelineEquivalence.assertSameStats(expected.stats(), new StatsReader(bootstrap, Topics.of(config), ModelInfo.of(checkpoint),
                    30_000).read(trigger));

            PruneResult result = results.get(0);
            assertEquals(PruneStatus.WRITTEN, result.getStatus(), result.getError());
            assertEquals("lstsq", result.getCompensation());
            assertEquals(expected.stats().tokens(), result.getStatsTokens());
            PipelineEquivalence.assertSameKept(checkpoint, model, expected.partial(), config, result.getKept());
            Path written = Path.of(result.getOutputPath());
            assertTrue(written.startsWith(out), written.toString());
            try (Checkpoint pruned = Checkpoint.open(written)) {
                assertEquals(result.getParamsAfter(), ai.hfprune.engine.prune.ParameterCount.of(pruned.weights()));
                PipelineEquivalence.assertSameCompensatedModel(checkpoint, model, expected, config, pruned, out.resolve("reference"));
            }
            assertTrue(Files.readString(written.resolve("prune-report.json")).contains("\"lstsq\""), "the report records the refit");
            assertTrue(result.getMetrics().get("perplexity") > 1, result.getMetrics().toString());
        }
    }

    @Test
    void twoScorersOnFourPartitionsEqualTheSingleProcessCommands(@TempDir Path out) throws Exception {
        assertPipelineEqualsSingleProcess(broker.bootstrapServers(), out, checkpoint, model, expected);
    }

    /**
     * {@code prune.compensate=obs}: the cut chosen by the refit's error, weighed by the output sensitivities the scorers
     * sent beside the Gram sums, then the refit: the model equals {@code hfprune prune --compensate obs}'s.
     */
    @Test
    void theRefitAwareCutThroughThePipelineWeighsTheOutputErrorsAsPruneDoes(@TempDir Path out) throws Exception {
        PipelineConfig config = PipelineEquivalence.config(broker.bootstrapServers(), out).with("prune.compensate", "obs");
        try (PipelineRun run = PipelineRun.start(config, checkpoint, 1, false, line -> { })) {
            PruneResult result = run.awaitResults(Duration.ofMinutes(5)).get(0);
            assertEquals(PruneStatus.WRITTEN, result.getStatus(), result.getError());
            assertEquals("obs", result.getCompensation());
            assertTrue(result.getOutputErrorsWeighed());
            assertTrue(PipelineRun.describe(result).contains("output errors weighed by their sensitivities"), PipelineRun.describe(result));
            Path written = Path.of(result.getOutputPath());
            com.fasterxml.jackson.databind.JsonNode report = new com.fasterxml.jackson.databind.ObjectMapper()
                    .readTree(written.resolve("prune-report.json").toFile());
            assertTrue(report.at("/compensation/output_errors_weighed").asBoolean(false), report.toString());
            try (Checkpoint pruned = Checkpoint.open(written)) {
                PipelineEquivalence.assertSameCompensatedModel(checkpoint, model, expected, config, pruned, out.resolve("reference"));
            }
        }
    }

    /**
     * One stats group (the scorer's transaction) folds all the batches at once and crosses four thresholds in one step:
     * the aggregator triggers once, for the newest, and the run ends at that result instead of waiting for four.
     */
    @Test
    void aFoldThatCrossesSeveralThresholdsEndsTheRunAtTheLast(@TempDir Path out) throws Exception {
        long total = (long) PipelineEquivalence.WINDOWS * PipelineEquivalence.SEQ_LEN;
        PipelineConfig config = PipelineEquivalence.config(broker.bootstrapServers(), out)
                .with("coverage.min.tokens", String.valueOf(total / 4))
                .with("coverage.every.tokens", String.valueOf(total / 4));
        try (PipelineRun run = PipelineRun.start(config, checkpoint, 1, false, line -> { })) {
            List<PruneResult> results = run.awaitResults(Duration.ofMinutes(5));
            PruneResult last = results.get(results.size() - 1);
            System.out.printf("%d result(s) for thresholds at %d, %d, %d and %d tokens%n", results.size(), total / 4,
                    total / 2, 3 * total / 4, total);
            assertEquals(total, last.getTokens(), results.toString());
            assertEquals(PruneStatus.WRITTEN, last.getStatus(), last.getError());
        }
    }

    /** Every metric the Grafana dashboard queries is one a running pipeline really exports on /metrics. */
    @Test
    void theDashboardQueriesOnlyExportedMetrics(@TempDir Path out) throws Exception {
        Set<String> queried = DashboardQueries.metricNames(DashboardQueries.dashboard());
        assertTrue(queried.size() >= 10, "the dashboard queries " + queried);
        PipelineConfig config = PipelineEquivalence.config(broker.bootstrapServers(), out).with("metrics.port", "0");
        List<String> lines = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (PipelineRun run = PipelineRun.start(config, checkpoint, 1, false, lines::add)) {
            run.awaitResults(Duration.ofMinutes(5));
            // the run serves its in-memory registry to other processes: the same schemas under the same ids over HTTP
            String prefix = "schema registry for services in other processes at ";
            String registryUrl = lines.stream().filter(l -> l.startsWith(prefix)).findFirst()
                    .map(l -> l.substring(prefix.length())).orElseThrow(() -> new AssertionError("no registry URL in " + lines));
            assertEquals(run.metrics().url("").orElseThrow(), registryUrl);
            ai.hfprune.pipeline.serde.SchemaRegistry local = ai.hfprune.pipeline.serde.SchemaRegistry.forUrl(config.get("schema.registry.url"));
            assertEquals(local.byId(1), new ai.hfprune.pipeline.serde.HttpSchemaRegistry(registryUrl).byId(1));
            // Kafka client metrics that appear after partitions are assigned (per-partition lag) are bound by Micrometer's
            // periodic refresh (every 60 s), so the scrape is repeated until every name is there or 2 minutes pass.
            URI metrics = URI.create(run.metrics().url("/metrics").orElseThrow());
            List<String> missing = List.copyOf(queried);
            Set<String> exported = Set.of();
            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            while (!missing.isEmpty() && System.nanoTime() < deadline) {
                HttpResponse<String> scrape = HttpClient.newHttpClient().send(HttpRequest.newBuilder(metrics).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertEquals(200, scrape.statusCode());
                exported = scrape.body().lines()
                        .filter(line -> !line.startsWith("#") && !line.isBlank())
                        .map(line -> line.split("[{ ]", 2)[0])
                        .collect(Collectors.toSet());
                Set<String> seen = exported;
                missing = queried.stream().filter(name -> !seen.contains(name)).toList();
                if (!missing.isEmpty()) {
                    Thread.sleep(2000);
                }
            }
            assertTrue(missing.isEmpty(), "queried by the dashboard but not exported: " + missing);
        }
    }

    @Test
    void aScorerKilledMidTransactionAndBadRecordsChangeNothing(@TempDir Path out) throws Exception {
        PipelineConfig config = PipelineEquivalence.config(broker.bootstrapServers(), out);
        Topics topics = Topics.of(config);
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()))) {
            topics.createAll(admin, 4, (short) 1);
        }
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        try (AggregatorService aggregator = new AggregatorService(config, topics, List.of(ModelInfo.of(checkpoint)), meters);
             PipelineWatcher watcher = new PipelineWatcher(broker.bootstrapServers(), topics, line -> { })) {
            aggregator.start();
            ScorerService doomed = new ScorerService(config.with("instance.id", "scorer-a"), topics, checkpoint, meters);
            doomed.crashAfterPartialsForTest(7); // a batch has 10 partials: the crash leaves one half-sent
            doomed.start();

            try (KafkaProducer<byte[], byte[]> raw = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                    broker.bootstrapServers()), new ByteArraySerializer(), new ByteArraySerializer())) {
                raw.send(new ProducerRecord<>(topics.calibrationBatches.name(), "junk".getBytes(), "not a batch".getBytes())).get();
                raw.send(new ProducerRecord<>(topics.importancePartials.name(), "junk".getBytes(), "not a partial".getBytes())).get();
            }
            CalibrationSampler sampler = new CalibrationSampler(config, topics, checkpoint, DocumentFiles.parse(config.get("data")),
                    false, meters);
            sampler.start();
            assertTrue(sampler.awaitCompletion(Duration.ofMinutes(2)));
            sampler.stop();

            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            while (doomed.state() != ScorerService.State.CRASHED && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            assertEquals(ScorerService.State.CRASHED, doomed.state());
            ScorerService successor = new ScorerService(config.with("instance.id", "scorer-a"), topics, checkpoint, meters);
            successor.start();
            try {
                PruneTrigger trigger = watcher.nextTrigger(Duration.ofMinutes(3));
                assertNotNull(trigger, "no trigger after the restart");
                PipelineEquivalence.assertSameSums(expected.partial(), trigger.getSnapshot());
                assertEquals(8, trigger.getSnapshot().getBatches());
                // the crash lost no statistics and counted none twice
                assertEquals(expected.stats().tokens(), trigger.getSnapshot().getStatsTokens());
                PipelineEquivalence.assertSameStats(expected.stats(), new StatsReader(broker.bootstrapServers(), topics,
                        ModelInfo.of(checkpoint), 30_000).read(trigger));
            } finally {
                successor.stop();
            }
            List<String> reasons = new ArrayList<>();
            for (ConsumerRecord<byte[], byte[]> r : readAll(topics.deadLetters.name(), 2)) {
                reasons.add(DeadLetters.header(r.headers(), DeadLetters.SERVICE) + ": " + DeadLetters.header(r.headers(), DeadLetters.REASON));
            }
            assertEquals(2, reasons.size(), reasons.toString());
            assertTrue(reasons.stream().anyMatch(r -> r.startsWith("scorer: ") && r.contains("wire format")), reasons.toString());
            assertTrue(reasons.stream().anyMatch(r -> r.startsWith("aggregator: ") && r.contains("wire format")), reasons.toString());
        }
        assertTrue(Files.notExists(out.resolve("stories260K")), "no pruner ran here");
    }

    private static List<ConsumerRecord<byte[], byte[]>> readAll(String topic, int atLeast) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers(),
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed",
                ConsumerConfig.GROUP_ID_CONFIG, "dlq-reader-" + System.nanoTime(),
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest"), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.subscribe(List.of(topic));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(out::add);
                if (out.size() >= atLeast) {
                    // one more poll: nothing else should arrive
                    c.poll(Duration.ofSeconds(1)).forEach(out::add);
                    break;
                }
            }
        }
        return out;
    }
}
