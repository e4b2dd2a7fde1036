package ai.hfprune.engine.recover;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Finalizer;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.PruneOptions;
import ai.hfprune.engine.prune.PrunedModel;
import ai.hfprune.engine.prune.Pruner;
import ai.hfprune.engine.testing.Assets;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;

/**
 * stories260K (the teacher, float32) and a copy pruned uniformly by {@code mlpRatio} of its MLP neurons, scored with
 * {@code criterion} on the first {@code scoringWindows} windows of train-head-2MiB.txt, as {@code hfprune prune} does.
 */
final class Stories260KPruned implements AutoCloseable {

    final Checkpoint checkpoint;
    final LlamaModel teacher;
    final PrunedModel pruned;

    Stories260KPruned(Criterion criterion, double mlpRatio, int scoringWindows, int seqLen) {
        checkpoint = Checkpoint.open(Assets.stories260K());
        teacher = checkpoint.load(Device.cpu(), DataType.FLOAT32);
        ImportanceScorer scorer = new ImportanceScorer(teacher);
        Partial total = scorer.zero(criterion);
        if (criterion.needsData()) {
            for (int[][] batch : CalibrationData.batches(trainWindows(scoringWindows, seqLen), 8)) {
                total = total.plus(scorer.score(batch, Set.of(criterion)).get(criterion));
            }
        }
        pruned = Pruner.prune(checkpoint, Finalizer.finalize(total, teacher, 1), PruneOptions.uniform(mlpRatio, 0));
    }

    /** The first {@code n} windows of {@code seqLen} tokens of the calibration text. */
    int[][] trainWindows(int n, int seqLen) {
        return windows(Assets.require("data/tinystories/train-head-2MiB.txt"), n, seqLen);
    }

    /** The first {@code n} windows of the development evaluation text. */
    int[][] validWindows(int n, int seqLen) {
        return windows(Assets.require("data/tinystories/valid-hf-head.txt"), n, seqLen);
    }

    private int[][] windows(Path file, int n, int seqLen) {
        int[][] w = CalibrationData.readWindows(file, checkpoint::tokenizer, checkpoint.config().vocabSize(), seqLen, n);
        if (w.length < n) {
            throw new IllegalStateException(file + " has only " + w.length + " windows of " + seqLen);
        }
        return w;
    }

    static int[][] head(int[][] windows, int n) {
        return Arrays.copyOfRange(windows, 0, n);
    }

    static int[][] tail(int[][] windows, int n) {
        return Arrays.copyOfRange(windows, windows.length - n, windows.length);
    }

    @Override
    public void close() {
        teacher.close();
        checkpoint.close();
    }
}
