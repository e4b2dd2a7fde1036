package ai.hfprune.engine.eval;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.io.MapTensorSource;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.testing.ReferenceForward;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Zero-shot scoring on a tiny random model with a one-character-per-token tokenizer, against log-probabilities
 * computed choice by choice with the plain-Java {@link ReferenceForward} (no batching, no padding).
 */
class ZeroShotEvaluatorTest {

    /** A context of 20 positions, so the longer items below are left-truncated. */
    private static final int MAX_LENGTH = 20;
    private static final ModelConfig CONFIG = new ModelConfig("LlamaForCausalLM", 61, 32, 48, 2, 4, 2, 8, 1e-5,
            10000.0, MAX_LENGTH, false, false, false, RopeStyle.HALF, 1, 2);
    private static final CharTokenizer TOKENIZER = new CharTokenizer(CONFIG.vocabSize());
    private static MapTensorSource weights;
    private static LlamaModel model;

    private static final ZeroShotTask TASK = new ZeroShotTask("toy", Path.of("toy.jsonl"), " ", List.of(
            question(0, "the cat", "sat", "ran away quickly", "is"),
            question(2, "a b c", "d", "e f", "x y z w"),
            question(1, "once upon a time there was a long story", "end", "and it went on"),
            question(0, "q", "a", "bb"),
            question(3, "why?", "because", "no", "yes", "maybe so"),
            question(1, "it is", "cold", "hot")));

    @BeforeAll
    static void setUp() {
        weights = RandomModels.weights(CONFIG, 11);
        model = LlamaModel.load(CONFIG, weights, Device.cpu(), DataType.FLOAT32);
    }

    @AfterAll
    static void tearDown() {
        model.close();
    }

    @Test
    void batchedScoresMatchSeparateForwardPasses() {
        List<EncodedChoice> encoded = new ArrayList<>();
        List<Double> expected = new ArrayList<>();
        for (Question q : TASK.questions()) {
            for (Choice c : q.choices()) {
                encoded.add(EncodedChoice.encode(TOKENIZER, c.context() + TASK.delimiter(), c.target(), MAX_LENGTH));
                expected.add(independentLogProb(c.context(), " " + c.target()));
            }
        }
        assertTrue(encoded.stream().anyMatch(e -> e.inputLength() == MAX_LENGTH), "some item must be truncated");
        // one sequence per pass, several padded ones per pass, everything in one pass
        for (int batchTokens : new int[] {1, 50, 10_000}) {
            double[] got = new ContinuationScorer(model, batchTokens).logProbs(encoded, n -> { });
            for (int i = 0; i < got.length; i++) {
                assertEquals(expected.get(i), got[i], 1e-4, "choice " + i + ", batchTokens " + batchTokens);
            }
        }
    }

    @Test
    void paddedLengthsAreMultiplesOf8() {
        int[][] cases = {{1, 8}, {8, 8}, {9, 16}, {100, 104}, {512, 512}, {513, 520}};
        for (int[] c : cases) {
            assertEquals(c[1], ContinuationScorer.paddedLength(c[0]), "length " + c[0]);
        }
    }

    @Test
    void accuracyMatchesHandComputation() {
        int correct = 0;
        int correctNorm = 0;
        for (Question q : TASK.questions()) {
            double[] raw = new double[q.choices().size()];
            double[] norm = new double[raw.length];
            for (int c = 0; c < raw.length; c++) {
                Choice choice = q.choices().get(c);
                raw[c] = independentLogProb(choice.context(), " " + choice.target());
                norm[c] = raw[c] / choice.target().getBytes(StandardCharsets.UTF_8).length;
            }
            correct += EvaluatorTest.argMax(raw) == q.gold() ? 1 : 0;
            correctNorm += EvaluatorTest.argMax(norm) == q.gold() ? 1 : 0;
        }
        int n = TASK.questions().size();
        TaskResult r = new ZeroShotEvaluator(model, TOKENIZER, 64).evaluate(TASK, done -> { });
        assertEquals("toy", r.name());
        assertEquals(n, r.n());
        assertEquals((double) correct / n, r.acc(), 1e-12);
        assertEquals((double) correctNorm / n, r.accNorm(), 1e-12);
        assertEquals(TaskResult.stderr(r.acc(), n), r.accStderr(), 1e-12);

        TaskResult limited = new ZeroShotEvaluator(model, TOKENIZER, 64).evaluate(TASK.limit(2), done -> { });
        assertEquals(2, limited.n());
    }

    @Test
    void standardErrorIsTheHarnessMeanStderr() {
        boolean[] outcomes = {true, true, false, false, true};
        double mean = 0.6;
        double ss = 0;
        for (boolean o : outcomes) {
            ss += Math.pow((o ? 1 : 0) - mean, 2);
        }
        double sampleStd = Math.sqrt(ss / (outcomes.length - 1));
        TaskResult r = TaskResult.of("t", outcomes, new boolean[] {true, false, false, false, false});
        assertEquals(0.6, r.acc(), 1e-12);
        assertEquals(sampleStd / Math.sqrt(outcomes.length), r.accStderr(), 1e-12);
        assertEquals(0.2, r.accNorm(), 1e-12);
        assertEquals(Math.sqrt(0.2 * 0.8 / 4), r.accNormStderr(), 1e-12);
        assertTrue(Double.isNaN(TaskResult.of("one", new boolean[] {true}, new boolean[] {true}).accStderr()));
    }

    /**
     * Σ log p(continuation | BOS + context), one plain-Java forward pass for this choice alone, keeping the last
     * MAX_LENGTH + 1 tokens of the sequence as the harness does.
     */
    private static double independentLogProb(String context, String continuation) {
        int[] ctx = TOKENIZER.encode(context);
        int[] cont = TOKENIZER.encode(continuation);
        int[] all = new int[1 + ctx.length + cont.length];
        all[0] = TOKENIZER.bosId();
        System.arraycopy(ctx, 0, all, 1, ctx.length);
        System.arraycopy(cont, 0, all, 1 + ctx.length, cont.length);
        int[] kept = Arrays.copyOfRange(all, Math.max(0, all.length - MAX_LENGTH - 1), all.length);
        double[][] logits = new ReferenceForward(CONFIG, weights).logits(Arrays.copyOf(kept, kept.length - 1));
        double sum = 0;
        for (int j = 0; j < cont.length; j++) {
            int position = kept.length - 1 - cont.length + j; // predicts kept[position + 1]
            sum += EvaluatorTest.logSoftmax(logits[position])[kept[position + 1]];
        }
        return sum;
    }

    private static Question question(int gold, String context, String... targets) {
        List<Choice> choices = new ArrayList<>();
        for (String t : targets) {
            choices.add(new Choice(context, t));
        }
        return new Question(choices, gold);
    }
}
