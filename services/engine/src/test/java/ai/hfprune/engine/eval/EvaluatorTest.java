package ai.hfprune.engine.eval;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.io.MapTensorSource;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.engine.testing.ReferenceForward;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Perplexity and fidelity of the DJL model against the same quantities computed in plain Java (float64 log-softmax
 * and KL) from the logits of the independent {@link ReferenceForward}.
 */
class EvaluatorTest {

    private static final ModelConfig CONFIG = RandomModels.llama(61, 32, 48, 2, 4, 2);
    private static MapTensorSource weightsA;
    private static MapTensorSource weightsB;
    private static LlamaModel modelA;
    private static LlamaModel modelB;
    private static int[][] windows;

    @BeforeAll
    static void setUp() {
        weightsA = RandomModels.weights(CONFIG, 1);
        weightsB = RandomModels.weights(CONFIG, 2);
        modelA = LlamaModel.load(CONFIG, weightsA, Device.cpu(), DataType.FLOAT32);
        modelB = LlamaModel.load(CONFIG, weightsB, Device.cpu(), DataType.FLOAT32);
        SplittableRandom r = new SplittableRandom(5);
        windows = new int[5][9];
        for (int[] w : windows) {
            for (int t = 0; t < w.length; t++) {
                w[t] = r.nextInt(CONFIG.vocabSize());
            }
        }
    }

    @AfterAll
    static void tearDown() {
        modelA.close();
        modelB.close();
    }

    @Test
    void perplexityMatchesPlainJava() {
        ReferenceForward reference = new ReferenceForward(CONFIG, weightsA);
        double nll = 0;
        long tokens = 0;
        for (int[] w : windows) {
            double[][] logits = reference.logits(w);
            for (int t = 0; t + 1 < w.length; t++) { // position t predicts token t+1; the last position predicts nothing
                nll -= logSoftmax(logits[t])[w[t + 1]];
                tokens++;
            }
        }
        // 2 windows per batch leaves a last batch of one: batches must add up exactly like one pass
        Perplexity p = Evaluator.perplexity(modelA, windows, 2);
        assertEquals(windows.length * (windows[0].length - 1), p.tokens());
        assertEquals(tokens, p.tokens());
        assertEquals(nll / tokens, p.meanNll(), 1e-5);
        assertEquals(Math.exp(nll / tokens), p.perplexity(), 1e-4 * p.perplexity());
        assertTrue(p.meanNll() > 1.0, "a random model should be far from certain: " + p.meanNll());
        assertEquals(p.meanNll(), Evaluator.perplexity(modelA, windows, 5).meanNll(), 1e-6);
    }

    @Test
    void fidelityToItselfIsPerfect() {
        Fidelity f = Evaluator.fidelity(modelA, modelA, windows, 3);
        assertEquals((long) windows.length * windows[0].length, f.positions());
        assertEquals(0.0, f.kl(), 1e-7);
        assertEquals(1.0, f.top1());
    }

    @Test
    void fidelityToAnotherModelMatchesPlainJava() {
        ReferenceForward a = new ReferenceForward(CONFIG, weightsA);
        ReferenceForward b = new ReferenceForward(CONFIG, weightsB);
        double kl = 0;
        long agree = 0;
        long positions = 0;
        for (int[] w : windows) {
            double[][] model = a.logits(w);
            double[][] ref = b.logits(w);
            for (int t = 0; t < w.length; t++) {
                double[] lq = logSoftmax(model[t]);
                double[] lp = logSoftmax(ref[t]);
                for (int v = 0; v < lp.length; v++) {
                    kl += Math.exp(lp[v]) * (lp[v] - lq[v]);
                }
                agree += argMax(model[t]) == argMax(ref[t]) ? 1 : 0;
                positions++;
            }
        }
        Fidelity f = Evaluator.fidelity(modelA, modelB, windows, 2);
        assertEquals(positions, f.positions());
        assertTrue(f.kl() > 0.01, "two random models should disagree: KL " + f.kl());
        assertEquals(kl / positions, f.kl(), 1e-5);
        assertEquals(agree, f.agreements());
        assertTrue(f.top1() < 1.0);
    }

    @Test
    void referenceWithAnotherVocabularyIsRejected() {
        ModelConfig other = RandomModels.llama(70, 32, 48, 2, 4, 2);
        try (LlamaModel m = LlamaModel.load(other, RandomModels.weights(other, 3), Device.cpu(), DataType.FLOAT32)) {
            HfpruneException e = assertThrows(HfpruneException.class, () -> Evaluator.fidelity(modelA, m, windows, 2));
            assertTrue(e.getMessage().contains("70") && e.getMessage().contains("61"), e.getMessage());
        }
    }

    /** stories260K reports a validation loss of about 1.30 nats/token on TinyStories. */
    @Test
    void stories260KPerplexityIsPlausible() {
        try (Checkpoint checkpoint = Checkpoint.open(Assets.stories260K()); LlamaModel model = checkpoint.load()) {
            int[][] w = CalibrationData.readWindows(Assets.require("data/tinystories/valid-hf-head.txt"),
                    checkpoint::tokenizer, checkpoint.config().vocabSize(), 128, 16);
            Perplexity p = Evaluator.perplexity(model, w, 8);
            System.out.printf("stories260K on valid-hf-head.txt, 16 windows of 128: perplexity %.4f, mean NLL %.4f over %d tokens%n",
                    p.perplexity(), p.meanNll(), p.tokens());
            assertEquals(16 * 127, p.tokens());
            assertTrue(p.meanNll() > 1.0 && p.meanNll() < 1.8, "mean NLL " + p.meanNll());
        }
    }

    static double[] logSoftmax(double[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (double z : logits) {
            max = Math.max(max, z);
        }
        double sum = 0;
        for (double z : logits) {
            sum += Math.exp(z - max);
        }
        double logZ = max + Math.log(sum);
        double[] out = new double[logits.length];
        for (int i = 0; i < logits.length; i++) {
            out[i] = logits[i] - logZ;
        }
        return out;
    }

    static int argMax(double[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
        return best;
    }
}
