package ai.hfprune.pipeline.e2e;

import ai.hfprune.engine.compensate.Compensation;
import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Finalizer;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.HfExport;
import ai.hfprune.engine.prune.LayerPlan;
import ai.hfprune.engine.prune.PruneReport;
import ai.hfprune.engine.prune.PruneOptions;
import ai.hfprune.engine.prune.PrunedModel;
import ai.hfprune.engine.prune.Pruner;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.LayerKept;
import ai.hfprune.schemas.LayerScores;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The single-process reference the pipeline must reproduce: what {@code hfprune score} and {@code prune} (with
 * {@code --compensate lstsq}, the default) compute.
 */
final class PipelineEquivalence {

    /** The scores' partial sums and the Gram statistics of the same forward passes, as {@code hfprune prune} computes them. */
    record Reference(Partial partial, GramStats stats) {
    }

    static final int SEQ_LEN = 32;
    static final int BATCH_WINDOWS = 4;
    static final int WINDOWS = 32;

    private PipelineEquivalence() {
    }

    /**
     * Settings of a small run on stories260K: 8 batches of 4 windows of 32 tokens, one trigger at the end; statistics
     * in chunks of 4 KiB (many chunks per matrix: a 172-wide MLP Gram is 119 KB packed).
     */
    static PipelineConfig config(String bootstrap, Path outputRoot) {
        return PipelineConfig.defaults()
                .with("bootstrap.servers", bootstrap)
                .with("topic.prefix", "e2e-" + UUID.randomUUID().toString().substring(0, 8) + ".")
                .with("schema.registry.url", "mock://e2e-" + UUID.randomUUID())
                .with("topic.partitions", "4")
                .with("model", Assets.stories260K().toString())
                .with("data", Assets.require("data/tinystories/train-head-2MiB.txt").toString())
                .with("eval.data", Assets.require("data/tinystories/valid-hf-head.txt").toString())
                .with("eval.max.windows", "4")
                .with("seq.len", String.valueOf(SEQ_LEN))
                .with("batch.windows", String.valueOf(BATCH_WINDOWS))
                .with("max.windows", String.valueOf(WINDOWS))
                .with("coverage.min.tokens", String.valueOf(WINDOWS * SEQ_LEN))
                .with("coverage.every.tokens", "1000000")
                .with("prune.mlp.ratio", "0.25")
                .with("prune.attn.ratio", "0.25")
                .with("stats.chunk.bytes", "4096")
                .with("output.root", outputRoot.toString())
                .with("metrics.port", "-1");
    }

    /** The partial sums and statistics of {@code hfprune prune} on the same windows and batches (ScoringOptions.calibrate). */
    static Reference singleProcess(Checkpoint checkpoint, LlamaModel model) {
        int[][] windows = CalibrationData.readWindows(Assets.require("data/tinystories/train-head-2MiB.txt"),
                checkpoint::tokenizer, checkpoint.config().vocabSize(), SEQ_LEN, WINDOWS);
        ImportanceScorer scorer = new ImportanceScorer(model);
        Partial total = scorer.zero(Criterion.ENTROPY);
        try (GramAccumulator stats = new GramAccumulator(model.manager(), model.layers().size())) {
            for (int[][] batch : CalibrationData.batches(windows, BATCH_WINDOWS)) {
                total = total.plus(scorer.score(batch, Set.of(Criterion.ENTROPY), stats).get(Criterion.ENTROPY));
            }
            return new Reference(total, stats.drain());
        }
    }

    /**
     * The Gram sums through Kafka equal the single-process ones: relative error ≤ 1e-6 per matrix (Frobenius) and per
     * element, relative to √(G_ii·G_jj), the bound of |G_ij|; the output sensitivities (the reference scores entropy,
     * so it has them) within 1e-6 per element.
     */
    static void assertSameStats(GramStats expected, GramStats actual) {
        assertEquals(expected.tokens(), actual.tokens());
        assertEquals(expected.windows(), actual.windows());
        assertEquals(expected.numLayers(), actual.numLayers());
        assertTrue(expected.hasSensitivity() && actual.hasSensitivity(), "the output sensitivities travel with the Gram sums");
        for (int l = 0; l < expected.numLayers(); l++) {
            assertSameGram(expected.mlp()[l], actual.mlp()[l], "layer " + l + " MLP Gram");
            assertSameGram(expected.attn()[l], actual.attn()[l], "layer " + l + " attention Gram");
            assertRelativelyClose(expected.mlpOutputSensitivity()[l], Arrays.stream(actual.mlpOutputSensitivity()[l]).boxed().toList(),
                    "layer " + l + " MLP output sensitivity");
            assertRelativelyClose(expected.attnOutputSensitivity()[l], Arrays.stream(actual.attnOutputSensitivity()[l]).boxed().toList(),
                    "layer " + l + " attention output sensitivity");
        }
    }

    private static void assertSameGram(double[] e, double[] a, String what) {
        assertEquals(e.length, a.length, what);
        int n = (int) Math.round(Math.sqrt(e.length));
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double d = a[i * n + j] - e[i * n + j];
                diff += d * d;
                norm += e[i * n + j] * e[i * n + j];
                double bound = Math.sqrt(e[i * n + i] * e[j * n + j]);
                assertTrue(Math.abs(d) <= 1e-6 * bound, what + " (" + i + ", " + j + "): pipeline " + a[i * n + j]
                        + ", single process " + e[i * n + j]);
            }
        }
        assertTrue(norm > 0 && Math.sqrt(diff / norm) <= 1e-6, what + ": relative error " + Math.sqrt(diff / norm));
    }

    /**
     * The model the pipeline wrote equals {@code hfprune prune --compensate <config's prune.compensate>} on the same
     * windows and batches (compensated, then exported as that command exports it, into {@code scratch}): every tensor
     * within float32 rounding (a few units in the last place of the tensor's largest value).
     */
    static void assertSameCompensatedModel(Checkpoint checkpoint, LlamaModel model, Reference expected, PipelineConfig config,
                                           Checkpoint written, Path scratch) {
        Scores scores = Finalizer.finalize(expected.partial(), model, 0);
        PrunedModel pruned = Pruner.prune(checkpoint, scores,
                PruneOptions.uniform(config.getDouble("prune.mlp.ratio"), config.getDouble("prune.attn.ratio")));
        Compensation compensation = Compensation.parse(config.compensation());
        PrunedModel refit = compensation.apply(checkpoint.config(), checkpoint.weights(), pruned, expected.stats(), config.damping());
        PruneReport report = PruneReport.of(checkpoint, scores, SEQ_LEN, refit);
        report.setCompensation(compensation, config.damping(), expected.stats());
        HfExport.save(checkpoint, refit, report, scratch, new HfExport.Options(2L << 30, false), n -> { });
        Path uncompensated = scratch.resolveSibling(scratch.getFileName() + "-uncompensated");
        HfExport.save(checkpoint, pruned, PruneReport.of(checkpoint, scores, SEQ_LEN, pruned), uncompensated,
                new HfExport.Options(2L << 30, false), n -> { });
        try (Checkpoint reference = Checkpoint.open(scratch); Checkpoint cut = Checkpoint.open(uncompensated)) {
            assertSameWeights(reference, written, cut, pruned.plan().layers().size());
        }
    }

    private static void assertSameWeights(Checkpoint expected, Checkpoint written, Checkpoint uncompensated, int layers) {
        assertEquals(new java.util.TreeSet<>(expected.weights().names()), new java.util.TreeSet<>(written.weights().names()));
        int refitTensors = 0;
        for (String name : expected.weights().names()) {
            float[] e = expected.weights().readFloats(name);
            float[] a = written.weights().readFloats(name);
            assertEquals(e.length, a.length, name);
            float max = 0;
            for (float v : e) {
                max = Math.max(max, Math.abs(v));
            }
            float tolerance = 8 * Math.ulp(max);
            for (int i = 0; i < e.length; i++) {
                assertTrue(Math.abs(a[i] - e[i]) <= tolerance, name + "[" + i + "]: pipeline " + a[i] + ", prune " + e[i]);
            }
            if (!java.util.Arrays.equals(e, uncompensated.weights().readFloats(name))) {
                refitTensors++;
            }
        }
        assertTrue(refitTensors >= 2 * layers, "down_proj and o_proj of every layer were refit: " + refitTensors);
    }

    static void assertSameSums(Partial expected, CoverageSnapshot snapshot) {
        assertEquals(expected.tokens(), snapshot.getTokens());
        assertEquals(expected.windows(), snapshot.getWindows());
        assertEquals(expected.mlp().length, snapshot.getLayers().size());
        for (LayerScores layer : snapshot.getLayers()) {
            int l = layer.getLayer();
            assertRelativelyClose(expected.mlp()[l], layer.getMlp(), "mlp layer " + l);
            assertRelativelyClose(expected.heads()[l], layer.getHeads(), "heads layer " + l);
        }
    }

    private static void assertRelativelyClose(double[] expected, List<Double> actual, String what) {
        assertEquals(expected.length, actual.size(), what);
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i];
            double a = actual.get(i);
            assertTrue(Math.abs(a - e) <= 1e-6 * Math.abs(e), what + " index " + i + ": pipeline " + a + ", single process " + e);
        }
    }

    /** The kept indices of {@code hfprune prune} with the single-process scores. */
    static void assertSameKept(Checkpoint checkpoint, LlamaModel model, Partial expected, PipelineConfig config, List<LayerKept> kept) {
        PrunedModel pruned = Pruner.prune(checkpoint, Finalizer.finalize(expected, model, 0),
                PruneOptions.uniform(config.getDouble("prune.mlp.ratio"), config.getDouble("prune.attn.ratio")));
        assertEquals(pruned.plan().layers().size(), kept.size());
        for (LayerPlan layer : pruned.plan().layers()) {
            LayerKept k = kept.get(layer.layer());
            assertEquals(Arrays.stream(layer.keptMlp()).boxed().toList(), k.getMlp(), "kept MLP neurons of layer " + layer.layer());
            assertEquals(Arrays.stream(layer.keptKvGroups()).boxed().toList(), k.getKvGroups(), "kept KV groups of layer " + layer.layer());
        }
    }
}
