package ai.hfprune.pipeline.pruner;

import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.importance.Finalizer;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.HfExport;
import ai.hfprune.engine.prune.PruneOptions;
import ai.hfprune.engine.prune.PruneReport;
import ai.hfprune.engine.prune.PrunedModel;
import ai.hfprune.engine.prune.Pruner;
import ai.hfprune.engine.recover.Recovery;
import ai.hfprune.engine.recover.RecoveryListener;
import ai.hfprune.engine.recover.RecoveryOptions;
import ai.hfprune.engine.recover.RecoveryResult;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.embedded.EmbeddedKafka;
import ai.hfprune.pipeline.run.PipelineWatcher;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneStatus;
import ai.hfprune.schemas.PruneTrigger;
import ai.hfprune.schemas.TokenBatch;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pruner's recovery ({@code prune.recover.steps}): trained on the first windows of calibration-batches in the
 * sampler's order whatever their partitions, equal to the engine's {@link Recovery} on those windows, and crash-safe.
 */
class PrunerRecoveryTest {

    private static final int SEQ_LEN = 32;
    private static final int BATCH_WINDOWS = 4;
    private static final int BATCHES = 8;
    private static final int TRAIN = 10;
    private static final int HELD_OUT = 4;
    private static final int STEPS = 6;

    private static EmbeddedKafka kafka;
    private static Checkpoint checkpoint;
    private static LlamaModel dense;
    private static int[][] stream;
    private static ModelId id;
    private static CoverageSnapshot snapshot;

    @BeforeAll
    static void start() {
        kafka = EmbeddedKafka.start();
        checkpoint = Checkpoint.open(Assets.stories260K());
        dense = checkpoint.load();
        stream = CalibrationData.readWindows(Assets.require("data/tinystories/train-head-2MiB.txt"), checkpoint::tokenizer,
                checkpoint.config().vocabSize(), SEQ_LEN, BATCHES * BATCH_WINDOWS);
        id = new ModelId(checkpoint.name(), checkpoint.sha256());
        snapshot = PrunerServiceTest.snapshot(id, checkpoint, dense);
    }

    @AfterAll
    static void stop() {
        dense.close();
        checkpoint.close();
        kafka.close();
    }

    private static PipelineConfig config(String prefix, Path out) {
        return PipelineConfig.defaults()
                .with("bootstrap.servers", kafka.bootstrapServers())
                .with("topic.prefix", prefix)
                .with("schema.registry.url", "mock://" + prefix)
                .with("seq.len", String.valueOf(SEQ_LEN))
                .with("eval.data", Assets.require("data/tinystories/valid-hf-head.txt").toString())
                .with("eval.max.windows", "2")
                .with("output.root", out.toString())
                .with("prune.compensate", "none") // the refit before recovery is the engine's and tested there
                .with("prune.recover.steps", String.valueOf(STEPS))
                .with("prune.recover.windows", String.valueOf(TRAIN))
                .with("prune.recover.held.out", String.valueOf(HELD_OUT));
    }

    /**
     * The stream's batches on two partitions, the later half of the stream first, with garbage, another model's batch
     * and a re-sent batch among them; then a trigger.
     */
    private static Topics fill(PipelineConfig config) throws Exception {
        Topics topics = Topics.of(config);
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
            topics.createAll(admin, 2, (short) 1);
        }
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                kafka.bootstrapServers()), new ByteArraySerializer(), new ByteArraySerializer())) {
            String topic = topics.calibrationBatches.name();
            List<Integer> order = Stream.of(5, 4, 6, 7, 0, 1, 3, 2).toList(); // partition = sequence % 2, in order per partition
            int[] sent = new int[2];
            for (int sequence : order) {
                int partition = sequence % 2;
                if (sent[partition]++ == 1) {
                    producer.send(new ProducerRecord<>(topic, partition, null, "garbage".getBytes(StandardCharsets.UTF_8))).get();
                    producer.send(new ProducerRecord<>(topic, partition, null, serialize(topics,
                            batch(new ModelId("other", "0".repeat(64)), 100 + sequence)))).get();
                }
                producer.send(new ProducerRecord<>(topic, partition, null, serialize(topics, batch(id, sequence)))).get();
            }
            producer.send(new ProducerRecord<>(topic, 1, null, serialize(topics, batch(id, 3)))).get(); // re-sent
            PrunerServiceTest.send(producer, topics, PrunerServiceTest.trigger(id, 1, snapshot));
        }
        return topics;
    }

    private static TokenBatch batch(ModelId model, int sequence) {
        List<List<Integer>> windows = new ArrayList<>();
        for (int w = 0; w < BATCH_WINDOWS; w++) {
            windows.add(Arrays.stream(stream[(sequence % BATCHES) * BATCH_WINDOWS + w]).boxed().toList());
        }
        return TokenBatch.newBuilder().setBatchId("batch-" + sequence).setModel(model).setCriteria(List.of("entropy"))
                .setSeqLen(SEQ_LEN).setWindows(windows).setSequence(sequence).setCreatedAtMillis(0).setSource("test").build();
    }

    private static byte[] serialize(Topics topics, TokenBatch b) {
        return topics.calibrationBatches.valueSerde().serializer().serialize(topics.calibrationBatches.name(), b);
    }

    @Test
    void recoversOnTheFirstWindowsOfTheStreamAsTheEngineDoes(@TempDir Path out) throws Exception {
        PipelineConfig config = config("recover.", out);
        Topics topics = fill(config);
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        List<String> lines = new ArrayList<>();
        PruneResult result;
        try (PrunerService pruner = new PrunerService(config, topics, checkpoint, meters, lines::add);
             PipelineWatcher watcher = new PipelineWatcher(kafka.bootstrapServers(), topics, line -> { })) {
            pruner.start();
            result = watcher.nextResult(Duration.ofMinutes(3));
        }
        assertNotNull(result);
        assertEquals(PruneStatus.WRITTEN, result.getStatus(), result.getError());
        Map<String, Double> m = result.getMetrics();
        assertEquals(TRAIN, m.get("recover_train_windows"));
        assertEquals(HELD_OUT, m.get("recover_held_out_windows"));
        assertTrue(m.get("recover_kl_after") < m.get("recover_kl_before"), m.toString());

        Scores scores = Finalizer.finalize(PrunerService.partial(PrunerServiceTest.trigger(id, 1, snapshot)), dense, 0);
        PrunedModel cut = Pruner.prune(checkpoint, scores,
                PruneOptions.uniform(config.getDouble("prune.mlp.ratio"), config.getDouble("prune.attn.ratio")));
        RecoveryResult expected = Recovery.run(dense, cut.config(), cut.weights(), Arrays.copyOfRange(stream, 0, TRAIN),
                Arrays.copyOfRange(stream, TRAIN, TRAIN + HELD_OUT), RecoveryOptions.defaults(STEPS), RecoveryListener.NONE);
        assertEquals(expected.heldOutKlBefore(), m.get("recover_kl_before"), 1e-9, "the same starting model and held-out windows");
        assertEquals(expected.heldOutKlAfter(), m.get("recover_kl_after"), 1e-6, "the same training");
        PrunedModel recovered = new PrunedModel(cut.config(), expected.weights(), cut.plan());
        Path reference = out.resolve("reference"); // exported as prune exports (Hugging Face's Q/K row order)
        HfExport.save(checkpoint, recovered, PruneReport.of(checkpoint, scores, SEQ_LEN, recovered), reference,
                new HfExport.Options(2L << 30, false), n -> { });
        try (Checkpoint written = Checkpoint.open(Path.of(result.getOutputPath())); Checkpoint engine = Checkpoint.open(reference)) {
            assertSameWeights(engine.weights(), written.weights());
            assertTrue(Files.readString(Path.of(result.getOutputPath(), "prune-report.json")).contains("\"recovery\""));
        }
        System.gc(); // the service is closed: its gauges must still read (Micrometer holds gauge objects weakly)
        assertEquals(STEPS, meters.get("hfprune_recover_steps").counter().count());
        assertEquals(STEPS, meters.get("hfprune_recover_step").gauge().value());
        assertEquals(expected.heldOutKlAfter(), meters.get("hfprune_recover_held_out_kl").gauge().value(), 1e-6);
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("recovered stories260K entropy v1: held-out KL")), lines.toString());
    }

    @Test
    void aCrashDuringRecoveryLeavesNothingWrittenAndTheTriggerIsRedone(@TempDir Path out) throws Exception {
        PipelineConfig config = config("crash.", out).with("instance.id", "pruner-1");
        Topics topics = fill(config);
        try (PrunerService doomed = new PrunerService(config, topics, checkpoint, new SimpleMeterRegistry(), line -> { })) {
            doomed.crashDuringRecoveryForTest(3);
            doomed.start();
            long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
            while (doomed.isRunning() && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            assertTrue(!doomed.isRunning(), "the crash stops the pruner");
        }
        try (Stream<Path> left = Files.list(out)) {
            assertEquals(List.of(), left.toList(), "nothing of the version, not even a temporary folder");
        }
        try (PrunerService pruner = new PrunerService(config, topics, checkpoint, new SimpleMeterRegistry(), line -> { });
             PipelineWatcher watcher = new PipelineWatcher(kafka.bootstrapServers(), topics, line -> { })) {
            pruner.start();
            PruneResult redone = watcher.nextResult(Duration.ofMinutes(3));
            assertNotNull(redone);
            assertEquals(1, redone.getVersion());
            assertEquals(PruneStatus.WRITTEN, redone.getStatus(), redone.getError());
            assertEquals(STEPS, redone.getMetrics().get("recover_steps_run"));
            assertTrue(Files.exists(Path.of(redone.getOutputPath(), "model.safetensors")));
            assertEquals(null, watcher.nextResult(Duration.ofSeconds(2)), "one result for the trigger, not two");
        }
    }

    private static void assertSameWeights(TensorSource expected, TensorSource actual) {
        assertEquals(new java.util.TreeSet<>(expected.names()), new java.util.TreeSet<>(actual.names()));
        for (String name : expected.names()) {
            float[] e = expected.readFloats(name);
            float[] a = actual.readFloats(name);
            assertEquals(e.length, a.length, name);
            for (int i = 0; i < e.length; i++) {
                assertEquals(e[i], a[i], 1e-6f * Math.max(1f, Math.abs(e[i])), name + "[" + i + "]");
            }
        }
    }
}
