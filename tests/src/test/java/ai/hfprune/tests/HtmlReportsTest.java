package ai.hfprune.tests;

import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.embedded.EmbeddedKafka;
import ai.hfprune.pipeline.pruner.PrunerService;
import ai.hfprune.pipeline.pruner.VersionIndex;
import ai.hfprune.pipeline.run.PipelineWatcher;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.LayerScores;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneStatus;
import ai.hfprune.schemas.PruneTrigger;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The three kinds of HTML report, each made by a real run on stories260K and opened in headless Chromium: the page's
 * scripts finish without an error or console message, and every chart holds the data the run's JSON says it should
 * (the counts are read back from the charts after they rendered).
 */
class HtmlReportsTest extends ChromiumTestBase {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void pruneWritesAReportOfItsCut() throws Exception {
        Path out = tmp.resolve("pruned");
        Cli cli = Cli.run("prune", "--model", Assets.stories260K().toString(),
                "--data", Assets.require("data/tinystories/train-head-2MiB.txt").toString(), "--criterion", "entropy",
                "--seq-len", "32", "--max-windows", "16", "--mlp-ratio", "0.25", "--attn-ratio", "0.25",
                "--recover-steps", "4", "--recover-held-out", "4", "--out", out.toString());
        assertEquals(0, cli.exitCode(), cli.err());
        Path html = out.resolve("report.html");
        assertTrue(Files.size(html) < 3_000_000, "page size " + Files.size(html));
        JsonNode report = JSON.readTree(out.resolve("prune-report.json").toFile());
        Page page = open(html, "prune-report", 2600);

        int layers = report.get("layers").size();
        int before = 0;
        int after = 0;
        for (JsonNode layer : report.get("layers")) {
            int l = layer.get("index").asInt();
            int width = layer.at("/mlp/before").asInt();
            int kept = layer.at("/mlp/after").asInt();
            before += width;
            after += kept;
            assertEquals(kept, page.sum("scores-mlp-" + l, "kept"), "layer " + l + ": kept neurons in the histogram");
            assertEquals(width - kept, page.sum("scores-mlp-" + l, "cut"), "layer " + l + ": cut neurons in the histogram");
        }
        assertEquals(5, layers);
        assertEquals(5 * 172, before);
        assertEquals(5 * 129, after, "25% of 172 neurons cut in every layer");
        assertEquals(layers, page.items("widths-mlp", "kept"));
        assertEquals(after, page.sum("widths-mlp", "kept"));
        assertEquals(before - after, page.sum("widths-mlp", "cut"));
        assertEquals(5 * 3, page.sum("widths-kv-groups", "kept"), "3 of 4 KV groups kept per layer");
        assertEquals(5 * 6, page.sum("widths-heads", "kept"));
        assertEquals(before, page.items("kept-map", "kept"), "one cell per neuron of the dense model");
        assertEquals(after, page.sum("kept-map", "kept"), "kept cells");
        assertEquals(5 * 8, page.items("scores-heads", "kept") + page.items("scores-heads", "cut"), "every query head");
        // input, criterion, cut, parameters, compensation, recovery
        assertEquals(6, page.status().at("/tables/metrics").asInt());
    }

    @Test
    void thePrunersIndexShowsTheHistoryOfItsVersions() throws Exception {
        Path root = tmp.resolve("versions");
        List<PruneResult> results = new ArrayList<>();
        try (EmbeddedKafka kafka = EmbeddedKafka.start();
             Checkpoint checkpoint = Checkpoint.open(Assets.stories260K());
             LlamaModel model = checkpoint.load()) {
            PipelineConfig config = PipelineConfig.defaults()
                    .with("bootstrap.servers", kafka.bootstrapServers())
                    .with("schema.registry.url", "mock://html-report-test")
                    .with("seq.len", "32")
                    .with("eval.data", Assets.require("data/tinystories/valid-hf-head.txt").toString())
                    .with("eval.max.windows", "2")
                    .with("output.root", root.toString())
                    .with("prune.compensate", "none")
                    .with("metrics.port", "-1");
            Topics topics = Topics.of(config);
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
                topics.createAll(admin, 1, (short) 1);
            }
            ModelId id = new ModelId(checkpoint.name(), checkpoint.sha256());
            try (PrunerService pruner = new PrunerService(config, topics, checkpoint, new SimpleMeterRegistry());
                 PipelineWatcher watcher = new PipelineWatcher(kafka.bootstrapServers(), topics, line -> { });
                 KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                         kafka.bootstrapServers()), new ByteArraySerializer(), new ByteArraySerializer())) {
                pruner.start();
                // coverage grows: the second version's sums hold the first one's windows and as many more
                send(producer, topics, trigger(id, 1, snapshot(id, checkpoint, model, 4, 1_700_000_000_000L)));
                send(producer, topics, trigger(id, 2, snapshot(id, checkpoint, model, 12, 1_700_000_060_000L)));
                for (int i = 0; i < 2; i++) {
                    PruneResult r = watcher.nextResult(Duration.ofMinutes(2));
                    assertNotNull(r, "result " + (i + 1));
                    assertEquals(PruneStatus.WRITTEN, r.getStatus(), r.getError());
                    results.add(r);
                }
            }
        }
        Path criterionDir = root.resolve("stories260K/entropy");
        Page index = open(criterionDir.resolve(VersionIndex.FILE), "pipeline-index", 1700);
        assertEquals(2, index.status().at("/tables/versions").asInt());
        assertEquals(2, index.items("history-kl", "KL"));
        assertEquals(results.get(0).getMetrics().get("kl") + results.get(1).getMetrics().get("kl"),
                index.sum("history-kl", "KL"), 1e-12);
        assertEquals(results.get(0).getMetrics().get("perplexity") + results.get(1).getMetrics().get("perplexity"),
                index.sum("history-perplexity", "pruned"), 1e-9);
        assertEquals(results.get(0).getParamsAfter() + results.get(1).getParamsAfter(), index.sum("history-parameters", "pruned"));
        // the index counts the change from the versions on disk; the pruner counted it from its memory of the last cut
        assertEquals(1, index.items("history-kept-changed", "changed"));
        assertTrue(results.get(1).getKeptChanged() > 0, "more calibration changed the cut");
        assertEquals(results.get(1).getKeptChanged(), index.sum("history-kept-changed", "changed"), 1e-12);
        assertEquals(2, index.items("history-coverage", "tokens"));
        assertEquals((4 + 12) * 32, index.sum("history-coverage", "tokens"));

        Page v2 = open(criterionDir.resolve("v2/report.html"), "pipeline-v2-report", 2400);
        assertEquals(5 * 138, v2.sum("kept-map", "kept"), "the default prune.mlp.ratio 0.2");
        assertTrue(v2.status().at("/tables/metrics").asInt() >= 4 + 5 + 1, "the version's metrics and coverage are shown");
    }

    @Test
    void benchFidelityDrawsItsCurves() throws Exception {
        Path study = tmp.resolve("study.json");
        Cli cli = Cli.run("bench", "fidelity", "--model", Assets.stories260K().toString(),
                "--criteria", "entropy,magnitude", "--settings", "0.1,0.3", "--methods", "mask,lstsq",
                "--windows", "4", "--calibration-sets", "1", "--seq-len", "32", "--eval-windows", "4", "--out", study.toString());
        assertEquals(0, cli.exitCode(), cli.err());
        JsonNode json = JSON.readTree(study.toFile());
        Page page = open(tmp.resolve("study.html"), "bench-fidelity", 1200);
        for (String criterion : List.of("entropy", "magnitude")) {
            for (String method : List.of("mask", "lstsq")) {
                String line = criterion + " · " + method;
                double kl = 0;
                double perplexity = 0;
                for (JsonNode r : json.get("results")) {
                    if (r.get("criterion").asText().equals(criterion) && r.get("method").asText().equals(method)) {
                        kl += r.get("kl").asDouble();
                        perplexity += r.get("perplexity").asDouble();
                    }
                }
                assertEquals(2, page.items("fidelity-kl", line), line + ": one point per setting");
                assertEquals(kl, page.sum("fidelity-kl", line), 1e-12, line);
                assertEquals(2, page.items("fidelity-perplexity", line));
                assertEquals(perplexity, page.sum("fidelity-perplexity", line), 1e-9, line);
            }
        }
        assertEquals(4, page.chart("fidelity-kl").size(), "one line per criterion × method");
    }

    /** The summed entropy scores of the first {@code windows} calibration windows of 32 tokens, as the aggregator sends them. */
    private static CoverageSnapshot snapshot(ModelId id, Checkpoint checkpoint, LlamaModel model, int windows, long atMillis) {
        int[][] w = CalibrationData.readWindows(Assets.require("data/tinystories/train-head-2MiB.txt"),
                checkpoint::tokenizer, checkpoint.config().vocabSize(), 32, windows);
        Partial p = new ImportanceScorer(model).score(w, Set.of(Criterion.ENTROPY)).get(Criterion.ENTROPY);
        List<LayerScores> layers = new ArrayList<>();
        for (int l = 0; l < p.mlp().length; l++) {
            layers.add(new LayerScores(l, Arrays.stream(p.mlp()[l]).boxed().toList(), Arrays.stream(p.heads()[l]).boxed().toList()));
        }
        return CoverageSnapshot.newBuilder().setModel(id).setCriterion("entropy").setVersion(1).setTokens(p.tokens())
                .setWindows(p.windows()).setBatches(windows / 4).setPendingBatches(0).setNumLayers(layers.size())
                .setLayersComplete(layers.size()).setLayers(layers).setUpdatedAtMillis(atMillis).build();
    }

    private static PruneTrigger trigger(ModelId id, int version, CoverageSnapshot snapshot) {
        return PruneTrigger.newBuilder().setModel(id).setCriterion("entropy").setVersion(version)
                .setThresholdTokens(snapshot.getTokens()).setSnapshot(snapshot).build();
    }

    private static void send(KafkaProducer<byte[], byte[]> producer, Topics topics, PruneTrigger t) throws Exception {
        producer.send(new ProducerRecord<>(topics.pruneTriggers.name(),
                Keys.modelCriterion(t.getModel(), t.getCriterion()).getBytes(StandardCharsets.UTF_8),
                topics.pruneTriggers.valueSerde().serializer().serialize(topics.pruneTriggers.name(), t))).get();
    }
}
