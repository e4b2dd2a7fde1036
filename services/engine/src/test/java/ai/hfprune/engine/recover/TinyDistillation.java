package ai.hfprune.engine.recover;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.io.MapTensorSource;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.model.WeightCheck;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.Planner;
import ai.hfprune.engine.prune.PruneFixtures;
import ai.hfprune.engine.prune.PruneOptions;
import ai.hfprune.engine.prune.PrunedModel;
import ai.hfprune.engine.prune.Pruner;

import java.util.SplittableRandom;

/**
 * A tiny random dense teacher and its pruned student, for checks in float64: Qwen2-like (q/k/v biases, untied
 * lm_head) or Qwen3-like (q/k norms, tied embeddings), both with grouped-query attention, so every branch of the
 * forward pass is on the gradient's path.
 */
final class TinyDistillation implements AutoCloseable {

    final ModelConfig teacherConfig;
    final MapTensorSource teacherWeights;
    final LlamaModel teacher;
    final PrunedModel student;

    TinyDistillation(String architecture, long seed) {
        boolean qwen3 = architecture.equals("Qwen3ForCausalLM");
        teacherConfig = new ModelConfig(architecture, 37, 16, 12, 2, 4, 2, 4, 1e-6, 10000.0, 64,
                qwen3, !qwen3, qwen3, RopeStyle.HALF, 1, 2);
        teacherWeights = RandomModels.weights(teacherConfig, seed);
        teacher = LlamaModel.load(teacherConfig, teacherWeights, Device.cpu(), DataType.FLOAT64);
        LayerWidths widths = WeightCheck.layerWidths(teacherConfig, teacherWeights);
        student = Pruner.apply(teacherConfig, teacherWeights,
                Planner.plan(widths, PruneFixtures.randomScores(widths, seed), PruneOptions.uniform(0.25, 0.5)));
    }

    /** A student in float64 with {@code loraRank} adapters (0: every weight trainable). */
    Adaptation adaptation(int loraRank) {
        return Adaptation.of(student.config(), student.weights(), Device.cpu(), DataType.FLOAT64, loraRank, 11);
    }

    /** The teacher's targets on {@code windows}, by a forward pass per batch. */
    TeacherTargets live(int[][] windows) {
        return TeacherTargets.live(teacher, windows);
    }

    /** Indices 0..n−1: a batch of all windows. */
    static int[] all(int n) {
        return HeldOutKl.range(0, n);
    }

    static int[][] windows(int vocab, int count, int length, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[][] w = new int[count][length];
        for (int[] window : w) {
            for (int t = 0; t < length; t++) {
                window[t] = r.nextInt(vocab);
            }
        }
        return w;
    }

    @Override
    public void close() {
        teacher.close();
    }
}
