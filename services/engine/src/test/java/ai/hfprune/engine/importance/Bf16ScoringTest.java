package ai.hfprune.engine.importance;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.nn.LlamaModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * bfloat16 scoring ({@link ScoringPrecision#BF16}) against float32 on a small random float32 model with GQA: every
 * layer's MLP and head scores within 2% (L1 relative error), and not equal to them, so the layers did run
 * in bfloat16 (8 bits of mantissa: errors of about 0.4% per rounding). The JVM survives it: DJL aborts on bfloat16
 * arrays it is handed, and these stay on the engine side.
 */
class Bf16ScoringTest {

    private static LlamaModel model;
    private static int[][] windows;

    @BeforeAll
    static void setUp() {
        ModelConfig c = RandomModels.llama(97, 64, 160, 3, 4, 2);
        model = LlamaModel.load(c, RandomModels.weights(c, 21), Device.cpu(), DataType.FLOAT32);
        windows = TinyWindows.random(c.vocabSize(), 4, 32, 8);
    }

    @AfterAll
    static void tearDown() {
        model.close();
    }

    @ParameterizedTest
    @EnumSource(value = ScoringMemory.class, names = {"STORE", "RECOMPUTE"})
    void scoresWithinAFewPercentOfFloat32(ScoringMemory memory) {
        Partial f32 = new ImportanceScorer(model, memory).score(windows, Set.of(Criterion.ENTROPY)).get(Criterion.ENTROPY);
        Partial bf16 = new ImportanceScorer(model, memory, ScoringPrecision.BF16)
                .score(windows, Set.of(Criterion.ENTROPY)).get(Criterion.ENTROPY);
        for (int l = 0; l < f32.mlp().length; l++) {
            assertClose(f32.mlp()[l], bf16.mlp()[l], "mlp layer " + l);
            assertClose(f32.heads()[l], bf16.heads()[l], "heads layer " + l);
        }
    }

    @Test
    void refusesWhatReadsActivationsFromJava() {
        ImportanceScorer bf16 = new ImportanceScorer(model, ScoringMemory.STORE, ScoringPrecision.BF16);
        assertThrows(IllegalArgumentException.class, () -> bf16.score(windows, Set.of(Criterion.ACTIVATION)));
    }

    private static void assertClose(double[] f32, double[] bf16, String what) {
        double error = 0;
        double norm = 0;
        for (int i = 0; i < f32.length; i++) {
            error += Math.abs(bf16[i] - f32[i]);
            norm += Math.abs(f32[i]);
        }
        double relative = error / norm;
        System.out.printf("bf16 %s: L1 relative error %.4f%n", what, relative);
        assertTrue(relative < 0.02, what + ": relative error " + relative);
        assertTrue(relative > 1e-5, what + ": as float32 (" + relative + "): not computed in bfloat16");
    }
}
