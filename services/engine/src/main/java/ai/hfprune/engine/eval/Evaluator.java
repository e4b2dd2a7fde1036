package ai.hfprune.engine.eval;

import ai.hfprune.engine.nn.TokenArrays;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;

import java.util.function.IntConsumer;

/**
 * Language-model metrics on windows of T tokens (built by {@link CalibrationData}, as for scoring).
 * <ul>
 *   <li>Perplexity: exp of the mean NLL of positions 1..T−1 of every window, each predicted from the
 *       positions before it in the same window (windows do not overlap and do not see each other).</li>
 *   <li>Fidelity to a reference model: the mean over all T positions of KL(reference ‖ model) between the two
 *       next-token distributions, and the fraction of positions where their argmax agrees.</li>
 * </ul>
 * Per-position values come out of the model's data type; all sums are float64.
 */
public final class Evaluator {

    private Evaluator() {
    }

    public static Perplexity perplexity(LlamaModel model, int[][] windows, int batchWindows) {
        return evaluate(model, null, windows, batchWindows, done -> { }).perplexity();
    }

    public static Fidelity fidelity(LlamaModel model, LlamaModel reference, int[][] windows, int batchWindows) {
        if (reference == null) {
            throw new IllegalArgumentException("fidelity needs a reference model");
        }
        return evaluate(model, reference, windows, batchWindows, done -> { }).fidelity();
    }

    /**
     * Perplexity and, when {@code reference} is not null, fidelity, sharing one forward pass of the model.
     *
     * @param windowsDone told how many windows each finished batch held (for progress bars)
     */
    public static WindowMetrics evaluate(LlamaModel model, LlamaModel reference, int[][] windows, int batchWindows,
                                         IntConsumer windowsDone) {
        if (reference != null) {
            requireSameVocabulary(model, reference);
        }
        Perplexity perplexity = Perplexity.ZERO;
        Fidelity fidelity = reference == null ? null : Fidelity.ZERO;
        for (int[][] batch : CalibrationData.batches(windows, batchWindows)) {
            WindowMetrics m = evaluateBatch(model, reference, batch);
            perplexity = perplexity.plus(m.perplexity());
            if (reference != null) {
                fidelity = fidelity.plus(m.fidelity());
            }
            windowsDone.accept(batch.length);
        }
        return new WindowMetrics(perplexity, fidelity);
    }

    /** KL and top-1 compare distributions over token ids, which only means something for one vocabulary. */
    public static void requireSameVocabulary(LlamaModel model, LlamaModel reference) {
        int v = model.config().vocabSize();
        int r = reference.config().vocabSize();
        if (v != r) {
            throw new HfpruneException("the reference model has a vocabulary of " + r + " tokens and the model " + v
                    + ": KL and top-1 agreement need both to share one tokenizer");
        }
    }

    private static WindowMetrics evaluateBatch(LlamaModel model, LlamaModel reference, int[][] windows) {
        try (NDManager batch = model.manager().newSubManager()) {
            NDArray ids = TokenArrays.ids(batch, windows);
            NDArray logits = model.forward(ids, ActivationTap.NONE);
            NDArray logp = logits.logSoftmax(-1);
            Perplexity perplexity = perplexity(logp, ids);
            if (reference == null) {
                return new WindowMetrics(perplexity, null);
            }
            try (NDManager referenceBatch = reference.manager().newSubManager()) {
                NDArray referenceLogits = reference.forward(TokenArrays.ids(referenceBatch, windows), ActivationTap.NONE);
                return new WindowMetrics(perplexity, fidelity(logits, logp, referenceLogits));
            }
        }
    }

    /** Σ −log p(x_{t+1} | x_≤t) over t = 0..T−2 of every window. */
    private static Perplexity perplexity(NDArray logp, NDArray ids) {
        NDArray targets = ids.get(":, 1:").expandDims(-1);
        double[] logProbs = TokenArrays.doubles(logp.get(":, :-1, :").gather(targets, -1));
        double nll = 0;
        for (double lp : logProbs) {
            nll -= lp;
        }
        return new Perplexity(nll, logProbs.length);
    }

    /** Σ_t Σ_v p_ref(v) (log p_ref(v) − log p(v)), and the positions where argmax agrees. */
    private static Fidelity fidelity(NDArray logits, NDArray logp, NDArray referenceLogits) {
        NDArray referenceLogp = referenceLogits.logSoftmax(-1);
        double[] kl = TokenArrays.doubles(referenceLogp.exp().mul(referenceLogp.sub(logp)).sum(new int[] {-1}));
        double klSum = 0;
        for (double k : kl) {
            klSum += k;
        }
        long agreements = referenceLogits.argMax(-1).eq(logits.argMax(-1)).toType(DataType.INT64, false).sum().getLong();
        return new Fidelity(klSum, agreements, kl.length);
    }
}
