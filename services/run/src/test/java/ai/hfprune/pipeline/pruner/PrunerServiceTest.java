package ai.hfprune.pipeline.pruner;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.ParameterCount;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.common.DeadLetters;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.embedded.EmbeddedKafka;
import ai.hfprune.pipeline.run.PipelineWatcher;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.LayerScores;
import ai.hfprune.schemas.ModelId;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Continuous re-pruning: a new version per trigger (in both formats with prune.format=both), no rewrite when the kept
 * set is unchanged, bad triggers to dead letters.
 */
class PrunerServiceTest {

    @Test
    void writesVersionsOnceAndDeadLettersBadTriggers(@TempDir Path out) throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.start();
             Checkpoint checkpoint = Checkpoint.open(Assets.stories260K());
             LlamaModel model = checkpoint.load()) {
            PipelineConfig config = PipelineConfig.defaults()
                    .with("bootstrap.servers", kafka.bootstrapServers())
                    .with("schema.registry.url", "mock://pruner-test")
                    .with("seq.len", "32")
                    .with("eval.data", Assets.require("data/tinystories/valid-hf-head.txt").toString())
                    .with("eval.max.windows", "2")
                    .with("output.root", out.toString())
                    .with("prune.compensate", "none") // versions of the cut alone here; the refit: below and end to end
                    .with("prune.format", "both");
            Topics topics = Topics.of(config);
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
                topics.createAll(admin, 1, (short) 1);
            }
            ModelId id = new ModelId(checkpoint.name(), checkpoint.sha256());
            CoverageSnapshot snapshot = snapshot(id, checkpoint, model);

            try (PrunerService pruner = new PrunerService(config, topics, checkpoint, new SimpleMeterRegistry());
                 PipelineWatcher watcher = new PipelineWatcher(kafka.bootstrapServers(), topics, line -> { });
                 KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                         kafka.bootstrapServers()), new ByteArraySerializer(), new ByteArraySerializer())) {
                pruner.start();
                send(producer, topics, trigger(id, 1, snapshot));
                send(producer, topics, trigger(id, 2, snapshot)); // the same sums: the same kept set
                producer.send(new ProducerRecord<>(topics.pruneTriggers.name(), "x".getBytes(), "garbage".getBytes())).get();
                send(producer, topics, trigger(new ModelId(checkpoint.name(), "0".repeat(64)), 3, snapshot));

                PruneResult first = watcher.nextResult(Duration.ofMinutes(2));
                PruneResult second = watcher.nextResult(Duration.ofMinutes(2));
                assertNotNull(first);
                assertNotNull(second);
                assertEquals(PruneStatus.WRITTEN, first.getStatus(), first.getError());
                assertEquals(1.0, first.getKeptChanged());
                Path v1 = out.resolve("stories260K/entropy/v1");
                assertEquals(v1.toString(), first.getOutputPath());
                assertTrue(Files.exists(v1.resolve("model.safetensors")));
                try (Checkpoint gguf = Checkpoint.open(v1.resolve("model.gguf"))) { // prune.format both: and for llama.cpp
                    assertEquals(ParameterCount.of(gguf.weights()), first.getParamsAfter());
                }
                assertTrue(Files.readString(v1.resolve("prune-report.json")).contains("perplexity"), "metrics in the report");

                assertEquals(PruneStatus.UNCHANGED, second.getStatus());
                assertEquals(0.0, second.getKeptChanged());
                assertEquals(v1.toString(), second.getOutputPath(), "points at the version it equals");
                assertTrue(Files.notExists(out.resolve("stories260K/entropy/v2")), "an unchanged version is not written again");

                List<String> reasons = deadLetterReasons(kafka.bootstrapServers(), topics, 2);
                assertEquals(2, reasons.size(), reasons.toString());
                assertTrue(reasons.get(0).contains("wire format"), reasons.get(0));
                assertTrue(reasons.get(1).contains("is not the model this pruner serves"), reasons.get(1));
                assertTrue(pruner.isRunning());
            }

            // with the refit, a version whose statistics are missing or incomplete fails, clearly and without waiting long
            PipelineConfig lstsq = config.with("prune.compensate", "lstsq").with("topic.prefix", "lstsq.")
                    .with("pruner.stats.timeout.ms", "60000");
            Topics lstsqTopics = Topics.of(lstsq);
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
                lstsqTopics.createAll(admin, 2, (short) 1);
            }
            try (PrunerService pruner = new PrunerService(lstsq, lstsqTopics, checkpoint, new SimpleMeterRegistry());
                 PipelineWatcher watcher = new PipelineWatcher(kafka.bootstrapServers(), lstsqTopics, line -> { });
                 KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                         kafka.bootstrapServers()), new ByteArraySerializer(), new ByteArraySerializer())) {
                pruner.start();
                send(producer, lstsqTopics, trigger(id, 1, snapshot)); // no statistics at all
                CoverageSnapshot claimed = CoverageSnapshot.newBuilder(snapshot).setStatsTokens(snapshot.getTokens())
                        .setStatsWindows(snapshot.getWindows()).setStatsChunks(5).build();
                send(producer, lstsqTopics, trigger(id, 2, claimed)); // statistics announced, none on calibration-stats
                PruneResult none = watcher.nextResult(Duration.ofMinutes(2));
                PruneResult missing = watcher.nextResult(Duration.ofMinutes(2));
                assertNotNull(none);
                assertNotNull(missing);
                assertEquals(PruneStatus.FAILED, none.getStatus());
                assertTrue(none.getError().contains("has no calibration statistics"), none.getError());
                assertEquals(PruneStatus.FAILED, missing.getStatus());
                assertTrue(missing.getError().contains("incomplete: 0 of 5 chunks") && missing.getError().contains("up to its end"),
                        missing.getError());
                assertTrue(Files.notExists(out.resolve("stories260K/entropy/v2")), "nothing written for a failed version");
                assertTrue(pruner.isRunning());
            }
        }
    }

    @Test
    void aBadFormatSettingIsNamed() {
        HfpruneException e = assertThrows(HfpruneException.class,
                () -> PrunerService.exportOptions(PipelineConfig.defaults().with("prune.format", "onnx")));
        assertTrue(e.getMessage().contains("prune.format") && e.getMessage().contains("hf, gguf or both"), e.getMessage());
        e = assertThrows(HfpruneException.class, () -> PrunerService.exportOptions(PipelineConfig.defaults().with("prune.gguf.type", "q4")));
        assertTrue(e.getMessage().contains("f32, f16 or q8_0"), e.getMessage());
    }

    @Test
    void versionDirectoriesStayInsideTheRoot(@TempDir Path root) {
        assertEquals(root.resolve("_/entropy/v1").toAbsolutePath(), VersionPaths.of(root, "..", "entropy", 1));
        assertEquals(root.resolve(".._.._etc/entropy/v1").toAbsolutePath(), VersionPaths.of(root, "../../etc", "entropy", 1));
        assertTrue(VersionPaths.of(root, "/abs/path", "x/../../y", 2).startsWith(root.toAbsolutePath()));
    }

    static CoverageSnapshot snapshot(ModelId id, Checkpoint checkpoint, LlamaModel model) {
        int[][] windows = CalibrationData.readWindows(Assets.require("data/tinystories/train-head-2MiB.txt"),
                checkpoint::tokenizer, checkpoint.config().vocabSize(), 32, 8);
        Partial p = new ImportanceScorer(model).score(windows, Set.of(Criterion.ENTROPY)).get(Criterion.ENTROPY);
        List<LayerScores> layers = new ArrayList<>();
        for (int l = 0; l < p.mlp().length; l++) {
            layers.add(new LayerScores(l, Arrays.stream(p.mlp()[l]).boxed().toList(), Arrays.stream(p.heads()[l]).boxed().toList()));
        }
        return CoverageSnapshot.newBuilder().setModel(id).setCriterion("entropy").setVersion(1).setTokens(p.tokens())
                .setWindows(p.windows()).setBatches(1).setPendingBatches(0).setNumLayers(layers.size())
                .setLayersComplete(layers.size()).setLayers(layers).setUpdatedAtMillis(0).build();
    }

    static PruneTrigger trigger(ModelId id, int version, CoverageSnapshot snapshot) {
        return PruneTrigger.newBuilder().setModel(id).setCriterion("entropy").setVersion(version)
                .setThresholdTokens(snapshot.getTokens()).setSnapshot(snapshot).build();
    }

    static void send(KafkaProducer<byte[], byte[]> producer, Topics topics, PruneTrigger t) throws Exception {
        producer.send(new ProducerRecord<>(topics.pruneTriggers.name(),
                Keys.modelCriterion(t.getModel(), t.getCriterion()).getBytes(StandardCharsets.UTF_8),
                topics.pruneTriggers.valueSerde().serializer().serialize(topics.pruneTriggers.name(), t))).get();
    }

    private static List<String> deadLetterReasons(String bootstrap, Topics topics, int expected) {
        List<String> reasons = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.GROUP_ID_CONFIG, "dlq-check", ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.subscribe(List.of(topics.deadLetters.name()));
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (reasons.size() < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    reasons.add(DeadLetters.header(r.headers(), DeadLetters.REASON));
                }
            }
        }
        return reasons;
    }
}
