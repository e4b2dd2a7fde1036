package ai.hfprune.engine.eval;

import ai.hfprune.engine.nn.TokenArrays;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Sums the log-probabilities of each {@link EncodedChoice}'s continuation tokens given what precedes them.
 *
 * <p>Sequences are sorted by length and batched up to {@code batchTokens} padded tokens; shorter ones are padded
 * at the end, which a causal model cannot see from earlier positions, so padding changes no score. Padded
 * lengths are rounded up to a multiple of {@value #LENGTH_STEP}, so that the model caches a causal mask and
 * rotary table for few distinct lengths.
 */
public final class ContinuationScorer {

    private static final int PAD = 0;
    private static final int LENGTH_STEP = 8;

    private final LlamaModel model;
    private final int batchTokens;

    /** @param batchTokens batch size × padded length per forward pass; a longer sequence goes alone */
    public ContinuationScorer(LlamaModel model, int batchTokens) {
        if (batchTokens < 1) {
            throw new IllegalArgumentException("batchTokens must be positive, got " + batchTokens);
        }
        this.model = model;
        this.batchTokens = batchTokens;
    }

    /**
     * @param done told how many choices each finished batch held
     * @return the log-probability of each continuation, in the order of {@code choices}
     */
    public double[] logProbs(List<EncodedChoice> choices, IntConsumer done) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < choices.size(); i++) {
            order.add(i);
        }
        order.sort(Comparator.comparingInt((Integer i) -> choices.get(i).inputLength()).reversed());
        double[] out = new double[choices.size()];
        int start = 0;
        while (start < order.size()) {
            int length = paddedLength(choices.get(order.get(start)).inputLength());
            int end = Math.min(order.size(), start + Math.max(1, batchTokens / length));
            List<Integer> batch = order.subList(start, end);
            double[] scores = scoreBatch(batch.stream().map(choices::get).toList(), length);
            for (int b = 0; b < batch.size(); b++) {
                out[batch.get(b)] = scores[b];
            }
            done.accept(batch.size());
            start = end;
        }
        return out;
    }

    static int paddedLength(int length) {
        return (length + LENGTH_STEP - 1) / LENGTH_STEP * LENGTH_STEP;
    }

    private double[] scoreBatch(List<EncodedChoice> batch, int length) {
        int[][] inputs = new int[batch.size()][length];
        int[][] targets = new int[batch.size()][length];
        for (int b = 0; b < batch.size(); b++) {
            int[] tokens = batch.get(b).tokens();
            Arrays.fill(inputs[b], PAD);
            Arrays.fill(targets[b], PAD);
            System.arraycopy(tokens, 0, inputs[b], 0, tokens.length - 1);
            System.arraycopy(tokens, 1, targets[b], 0, tokens.length - 1);
        }
        double[] logProbs;
        try (NDManager manager = model.manager().newSubManager()) {
            NDArray logits = model.forward(TokenArrays.ids(manager, inputs), ActivationTap.NONE);
            NDArray targetIds = TokenArrays.ids(manager, targets).expandDims(-1);
            logProbs = TokenArrays.doubles(logits.logSoftmax(-1).gather(targetIds, -1)); // (batch, length) row-major
        }
        double[] sums = new double[batch.size()];
        for (int b = 0; b < batch.size(); b++) {
            EncodedChoice c = batch.get(b);
            for (int t = c.inputLength() - c.continuationLength(); t < c.inputLength(); t++) {
                sums[b] += logProbs[b * length + t];
            }
        }
        return sums;
    }
}
