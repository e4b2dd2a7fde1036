package ai.hfprune.engine.importance;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.nn.LlamaModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * bfloat16 scoring ({@link ScoringPrecision#BF16}) against float32 on a small random float32 model with GQA: every
 * layer's MLP and head scores within 2% (L1 relative error), and not equal to them, so the layers did run
 * in bfloat16 (8 bits of mantissa: errors of about 0.4% per rounding); the same for the activation criterion and the
 * Gram statistics. The JVM survives it: DJL aborts on bfloat16 arrays it is handed, and these stay on the engine side.
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

    /** The activation criterion and the Gram statistics, which read A and O in Java, from float32 copies. */
    @Test
    void activationAndStatisticsWithinAFewPercentOfFloat32() {
        GramStats f32;
        GramStats bf16;
        Partial f32Activation;
        Partial bf16Activation;
        Set<Criterion> criteria = Set.of(Criterion.ENTROPY, Criterion.ACTIVATION);
        try (GramAccumulator acc = new GramAccumulator(model.manager(), model.layers().size())) {
            f32Activation = new ImportanceScorer(model, ScoringMemory.RECOMPUTE).score(windows, criteria, acc)
                    .get(Criterion.ACTIVATION);
            f32 = acc.drain();
        }
        try (GramAccumulator acc = new GramAccumulator(model.manager(), model.layers().size())) {
            bf16Activation = new ImportanceScorer(model, ScoringMemory.RECOMPUTE, ScoringPrecision.BF16)
                    .score(windows, criteria, acc).get(Criterion.ACTIVATION);
            bf16 = acc.drain();
        }
        for (int l = 0; l < model.layers().size(); l++) {
            assertClose(f32Activation.mlp()[l], bf16Activation.mlp()[l], "activation criterion, mlp layer " + l);
            // the Gram matrices' many small off-diagonal sums carry larger relative errors (1-2% here)
            assertClose(f32.mlp()[l], bf16.mlp()[l], "Gram matrix of A, layer " + l, 0.05);
            assertClose(f32.attn()[l], bf16.attn()[l], "Gram matrix of O, layer " + l, 0.05);
            assertClose(f32.mlpOutputSensitivity()[l], bf16.mlpOutputSensitivity()[l], "MLP block's sensitivity, layer " + l);
            assertClose(f32.attnOutputSensitivity()[l], bf16.attnOutputSensitivity()[l],
                    "attention block's sensitivity, layer " + l);
        }
    }

    private static void assertClose(double[] f32, double[] bf16, String what) {
        assertClose(f32, bf16, what, 0.02);
    }

    private static void assertClose(double[] f32, double[] bf16, String what, double bound) {
        double error = 0;
        double norm = 0;
        for (int i = 0; i < f32.length; i++) {
            error += Math.abs(bf16[i] - f32[i]);
            norm += Math.abs(f32[i]);
        }
        double relative = error / norm;
        System.out.printf("bf16 %s: L1 relative error %.4f%n", what, relative);
        assertTrue(relative < bound, what + ": relative error " + relative);
        assertTrue(relative > 1e-5, what + ": as float32 (" + relative + "): not computed in bfloat16");
    }
}
