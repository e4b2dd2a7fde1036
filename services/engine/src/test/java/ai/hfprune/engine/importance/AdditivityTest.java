package ai.hfprune.engine.importance;

import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.testing.Assets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Collections;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pipeline streams partial sums between machines, so a score from batches in any order and grouping must
 * equal the single-pass score. Checked on stories260K with real TinyStories windows.
 */
class AdditivityTest {

    private static Checkpoint checkpoint;
    private static LlamaModel model;
    private static int[][] windows;

    @BeforeAll
    static void setUp() {
        checkpoint = Checkpoint.open(Assets.stories260K());
        model = checkpoint.load();
        windows = CalibrationData.readWindows(Assets.require("data/tinystories/train-head-2MiB.txt"),
                checkpoint::tokenizer, checkpoint.config().vocabSize(), 64, 8);
    }

    @AfterAll
    static void tearDown() {
        model.close();
        checkpoint.close();
    }

    @ParameterizedTest
    @EnumSource(Criterion.class)
    void fourBatchesOfTwoEqualOneBatchOfEight(Criterion criterion) {
        ImportanceScorer scorer = new ImportanceScorer(model);
        Partial single = scorer.score(windows, Set.of(criterion)).get(criterion);

        List<int[][]> batches = new java.util.ArrayList<>(CalibrationData.batches(windows, 2));
        assertEquals(4, batches.size());
        Collections.reverse(batches); // order must not matter either
        Partial streamed = scorer.zero(criterion);
        for (int[][] batch : batches) {
            streamed = streamed.plus(scorer.score(batch, Set.of(criterion)).get(criterion));
        }

        assertEquals(single.windows(), streamed.windows());
        assertEquals(8 * 64, streamed.tokens());
        Scores a = Finalizer.finalize(single, model, 17);
        Scores b = Finalizer.finalize(streamed, model, 17);
        for (int l = 0; l < a.mlp().length; l++) {
            assertClose(a.mlp()[l], b.mlp()[l], criterion + " mlp layer " + l);
            assertClose(a.heads()[l], b.heads()[l], criterion + " heads layer " + l);
        }
    }

    private static void assertClose(double[] expected, double[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        double scale = 0;
        for (double e : expected) {
            scale = Math.max(scale, Math.abs(e));
        }
        assertTrue(scale > 0, what + " is all zeros");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-5 * scale, what + " index " + i);
        }
    }
}
