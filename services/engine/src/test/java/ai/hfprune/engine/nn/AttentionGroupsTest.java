package ai.hfprune.engine.nn;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.importance.ScoringMemory;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** Attention over groups of heads (long sequences) computes what attention over all heads at once computes. */
class AttentionGroupsTest {

    @Test
    void groupsOfHeadsGiveTheLogitsAndScoresOfAllHeadsAtOnce() {
        ModelConfig c = RandomModels.llama(41, 24, 20, 2, 6, 2);
        int[][] windows = {{1, 5, 9, 3, 7, 2, 8}, {4, 4, 0, 6, 1, 3, 9}};
        try (LlamaModel model = LlamaModel.load(c, RandomModels.weights(c, 3), Device.cpu(), DataType.FLOAT64)) {
            double[] whole = logits(model, windows);
            Partial wholeScores = entropy(model, windows);
            model.scoreElements(2 * 7 * 7 * 4); // 2 windows, 7 × 7 scores: four heads, then the other two
            double[] grouped = logits(model, windows);
            Partial groupedScores = entropy(model, windows);
            model.scoreElements(1); // one head at a time
            double[] single = logits(model, windows);
            assertArrayEquals(whole, grouped, 1e-12);
            assertArrayEquals(whole, single, 1e-12);
            for (int l = 0; l < c.numHiddenLayers(); l++) {
                assertArrayEquals(wholeScores.mlp()[l], groupedScores.mlp()[l], 1e-12);
                assertArrayEquals(wholeScores.heads()[l], groupedScores.heads()[l], 1e-12);
            }
        }
    }

    private static double[] logits(LlamaModel model, int[][] windows) {
        try (NDManager batch = model.manager().newSubManager()) {
            return model.forward(TokenArrays.ids(batch, windows), ActivationTap.NONE).toDoubleArray();
        }
    }

    private static Partial entropy(LlamaModel model, int[][] windows) {
        return new ImportanceScorer(model, ScoringMemory.STORE).score(windows, Set.of(Criterion.ENTROPY)).get(Criterion.ENTROPY);
    }
}
