package ai.hfprune.engine.eval;

import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Zero-shot multiple choice as lm-evaluation-harness scores it: each choice gets the summed log-probability of
 * its target tokens after its context and the task's delimiter; {@code acc} counts the questions whose gold
 * choice scores highest, {@code acc_norm} the same after dividing each score by the target's length in UTF-8
 * bytes. Ties go to the first choice, like numpy's argmax.
 */
public final class ZeroShotEvaluator {

    private final Tokenizer tokenizer;
    private final ContinuationScorer scorer;
    private final int maxLength;

    /** @param batchTokens padded tokens per forward pass (see {@link ContinuationScorer}) */
    public ZeroShotEvaluator(LlamaModel model, Tokenizer tokenizer, int batchTokens) {
        this.tokenizer = tokenizer;
        this.scorer = new ContinuationScorer(model, batchTokens);
        this.maxLength = model.config().maxPositionEmbeddings();
    }

    /** How many sequences {@link #evaluate} scores for {@code task}: one per choice. */
    public static int choiceCount(ZeroShotTask task) {
        return task.questions().stream().mapToInt(q -> q.choices().size()).sum();
    }

    /** @param choicesDone told how many choices each finished batch held */
    public TaskResult evaluate(ZeroShotTask task, IntConsumer choicesDone) {
        List<EncodedChoice> encoded = new ArrayList<>();
        for (Question q : task.questions()) {
            for (Choice c : q.choices()) {
                encoded.add(EncodedChoice.encode(tokenizer, c.context() + task.delimiter(), c.target(), maxLength));
            }
        }
        double[] logProbs = scorer.logProbs(encoded, choicesDone);
        List<Question> questions = task.questions();
        boolean[] correct = new boolean[questions.size()];
        boolean[] correctNorm = new boolean[questions.size()];
        int next = 0;
        for (int i = 0; i < questions.size(); i++) {
            List<Choice> choices = questions.get(i).choices();
            double[] raw = new double[choices.size()];
            double[] norm = new double[choices.size()];
            for (int c = 0; c < choices.size(); c++) {
                raw[c] = logProbs[next++];
                norm[c] = raw[c] / choices.get(c).target().getBytes(StandardCharsets.UTF_8).length;
            }
            correct[i] = argMax(raw) == questions.get(i).gold();
            correctNorm[i] = argMax(norm) == questions.get(i).gold();
        }
        return TaskResult.of(task.name(), correct, correctNorm);
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
