package ai.hfprune.cli.chaos;

import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Finalizer;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.LayerPlan;
import ai.hfprune.engine.prune.PruneOptions;
import ai.hfprune.engine.prune.Pruner;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * The single-process answer the pipeline must reproduce through the chaos: the entropy partial sums of {@code hfprune
 * score} on the same windows and batches (its loop: {@code CalibrationData} windows, batches of B, {@link
 * ImportanceScorer} summed with {@link Partial#plus}), and the neurons and KV groups {@code hfprune prune} keeps with
 * the scores they finalize to.
 */
record Reference(Partial sums, List<Kept> kept) {

    /** Kept MLP neurons and KV groups of one layer. */
    record Kept(List<Integer> mlp, List<Integer> kvGroups) {
    }

    static Reference compute(Checkpoint checkpoint, Path data, int seqLen, int windows, int batchWindows, double mlpRatio,
                             double attnRatio) {
        int[][] all = CalibrationData.readWindows(data, checkpoint::tokenizer, checkpoint.config().vocabSize(), seqLen, windows);
        try (LlamaModel llama = checkpoint.load()) {
            ImportanceScorer scorer = new ImportanceScorer(llama);
            Partial total = scorer.zero(Criterion.ENTROPY);
            for (int[][] batch : CalibrationData.batches(all, batchWindows)) {
                total = total.plus(scorer.score(batch, Set.of(Criterion.ENTROPY)).get(Criterion.ENTROPY));
            }
            List<LayerPlan> plan = Pruner.prune(checkpoint, Finalizer.finalize(total, llama, 0),
                    PruneOptions.uniform(mlpRatio, attnRatio)).plan().layers();
            List<Kept> kept = plan.stream().map(l -> new Kept(Arrays.stream(l.keptMlp()).boxed().toList(),
                    Arrays.stream(l.keptKvGroups()).boxed().toList())).toList();
            return new Reference(total, kept);
        }
    }
}
