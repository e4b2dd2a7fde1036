package ai.hfprune.pipeline.e2e;

import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Finalizer;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.LayerPlan;
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

/** The single-process reference the pipeline must reproduce: what {@code hfprune score} and {@code prune} compute. */
final class PipelineEquivalence {

    static final int SEQ_LEN = 32;
    static final int BATCH_WINDOWS = 4;
    static final int WINDOWS = 32;

    private PipelineEquivalence() {
    }

    /** Settings of a small run on stories260K: 8 batches of 4 windows of 32 tokens, one trigger at the end. */
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
                .with("output.root", outputRoot.toString())
                .with("metrics.port", "-1");
    }

    /** The partial sums of {@code hfprune score} on the same windows and batches. */
    static Partial singleProcess(Checkpoint checkpoint, LlamaModel model) {
        int[][] windows = CalibrationData.readWindows(Assets.require("data/tinystories/train-head-2MiB.txt"),
                checkpoint::tokenizer, checkpoint.config().vocabSize(), SEQ_LEN, WINDOWS);
        ImportanceScorer scorer = new ImportanceScorer(model);
        Partial total = scorer.zero(Criterion.ENTROPY);
        for (int[][] batch : CalibrationData.batches(windows, BATCH_WINDOWS)) {
            total = total.plus(scorer.score(batch, Set.of(Criterion.ENTROPY)).get(Criterion.ENTROPY));
        }
        return total;
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
