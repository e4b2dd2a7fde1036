package ai.hfprune.engine.importance;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.nn.TokenArrays;

import java.util.ArrayList;
import java.util.List;

/**
 * The final norm, LM head, softmax and loss, and their backward pass, over chunks of positions, so that the
 * (windows × T × vocab) logits never exist whole: each loss term depends only on its own position's logits (and the
 * final norm acts on each position alone), so the gradient of a chunk's terms with respect to the chunk's hidden
 * states is exactly that slice of the whole loss's gradient.
 *
 * <p>Runs inside a {@code GradientCollector} (under {@code GradientLock}).
 */
final class ChunkedHead {

    /**
     * About this many logits per chunk by default (8 MiB in float32; the softmax and its backward hold a few arrays of
     * it): the passes over a chunk stay in cache's reach, and no array is large enough for glibc to map it afresh (and
     * fault it in) at every batch. Issue 12: the synthetic model's head took 166 ms a batch in chunks of 2^23 logits,
     * 107 in chunks of 2^22 and 83 in chunks of 2^21 (2 threads, glibc's malloc).
     */
    static final long DEFAULT_CHUNK_ELEMENTS = 1L << 21;

    /**
     * ...but at least this many rows (windows × positions) a chunk, so that the product with the LM head reads its
     * (vocab × hidden) weight once per this many rows at most: a 128,256-word vocabulary would get 16 rows a chunk.
     */
    static final int MIN_ROWS = 128;

    /**
     * @param gradients per criterion, ∂L/∂hidden of shape (windows, T, hidden), attached to the manager of hidden
     * @param losses    per criterion, L (for tests)
     */
    record Result(NDArray[] gradients, double[] losses) {
    }

    private ChunkedHead() {
    }

    /** The default logits per chunk for a vocabulary of {@code vocab}: see {@link #DEFAULT_CHUNK_ELEMENTS}, {@link #MIN_ROWS}. */
    static long defaultChunkElements(int vocab) {
        return Math.max(DEFAULT_CHUNK_ELEMENTS, (long) MIN_ROWS * vocab);
    }

    /**
     * @param hidden the last decoder layer's output, shape (windows, T, hidden); not part of any graph
     * @param chunkElements the logits per chunk: positions per chunk = max(1, chunkElements / (windows × vocab))
     */
    static Result backward(LlamaModel model, NDArray hidden, NDArray inputIds, List<Criterion> criteria, long chunkElements) {
        long windows = hidden.getShape().get(0);
        int seqLen = (int) hidden.getShape().get(1);
        int positions = (int) Math.max(1, Math.min(seqLen, chunkElements / (windows * model.config().vocabSize())));
        List<List<NDArray>> parts = new ArrayList<>();
        for (int i = 0; i < criteria.size(); i++) {
            parts.add(new ArrayList<>());
        }
        double[] losses = new double[criteria.size()];
        NDManager target = hidden.getManager();
        for (int from = 0; from < seqLen; from += positions) {
            int to = Math.min(seqLen, from + positions);
            try (NDManager chunk = target.newSubManager()) {
                NDArray h = hidden.get(new NDIndex(":, {}:{}", from, to)).duplicate(); // a leaf of its own
                h.attach(chunk);
                h.setRequiresGradient(true);
                NDArray logits = model.head(h);
                for (int i = 0; i < criteria.size(); i++) {
                    Criterion c = criteria.get(i);
                    boolean retain = i < criteria.size() - 1;
                    double weight = Losses.weight(c, seqLen);
                    boolean anyTerm = true;
                    if (c == Criterion.ENTROPY) { // the gradient at the logits written out (Losses.entropyGradient)
                        NDArray[] g = Losses.entropyGradient(logits);
                        losses[i] += weight * TokenArrays.scalar(g[1]);
                        JniUtils.backward((PtNDArray) logits, (PtNDArray) g[0], retain, false);
                        g[0].close();
                    } else {
                        NDArray sum = Losses.chunkSum(c, logits, inputIds, from);
                        anyTerm = sum != null;
                        if (anyTerm) {
                            losses[i] += weight * TokenArrays.scalar(sum);
                            JniUtils.backward((PtNDArray) sum, (PtNDArray) sum.onesLike(), retain, false);
                        }
                    }
                    NDArray grad;
                    if (anyTerm) {
                        // ∂(weight · sum) = weight · ∂sum: the weight stays out of the graph (see LlamaModel's sqrtHeadDim)
                        grad = h.getGradient().mul(weight);
                        JniUtils.zeroGrad((PtNDArray) h);
                    } else {
                        grad = chunk.zeros(h.getShape(), h.getDataType());
                    }
                    grad.attach(target);
                    parts.get(i).add(grad);
                }
            }
        }
        NDArray[] gradients = new NDArray[criteria.size()];
        for (int i = 0; i < criteria.size(); i++) {
            List<NDArray> p = parts.get(i);
            gradients[i] = p.size() == 1 ? p.get(0) : NDArrays.concat(new NDList(p), 1);
            if (p.size() > 1) {
                p.forEach(NDArray::close);
            }
        }
        return new Result(gradients, losses);
    }
}
