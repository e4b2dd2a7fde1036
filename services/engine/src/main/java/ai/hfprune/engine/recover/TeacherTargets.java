package ai.hfprune.engine.recover;

import ai.hfprune.engine.nn.TokenArrays;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;

/**
 * What the student is trained towards on a fixed set of windows: the teacher's next-token log-probabilities. The
 * teacher does not change during recovery, and every training window is seen many times (500 steps of 8 windows
 * visit 256 windows about 16 times each), so when they fit in {@code budgetBytes} they are computed once, in
 * batches, and kept in one (windows, T, vocab) array; otherwise the teacher runs a forward pass for every batch.
 * Either way the student sees the same numbers: {@link DistillationLoss} takes a log-softmax of what it is given,
 * and the log-softmax of log-probabilities is themselves.
 */
final class TeacherTargets implements AutoCloseable {

    /** stories260K's 256 training windows of 128 tokens take 64 MiB; a 32k vocabulary would take 4 GiB. */
    static final long DEFAULT_BUDGET_BYTES = 512L << 20;

    private final LlamaModel teacher;
    private final int[][] windows;
    /** Holds {@link #cached}; null when the teacher runs per batch. */
    private final NDManager manager;
    private final NDArray cached;

    private TeacherTargets(LlamaModel teacher, int[][] windows, NDManager manager, NDArray cached) {
        this.teacher = teacher;
        this.windows = windows;
        this.manager = manager;
        this.cached = cached;
    }

    /** The teacher's forward pass for every batch asked for: no memory kept. */
    static TeacherTargets live(LlamaModel teacher, int[][] windows) {
        return new TeacherTargets(teacher, windows, null, null);
    }

    /** Cached when the log-probabilities of all {@code windows} fit in {@code budgetBytes}, else {@link #live}. */
    static TeacherTargets of(LlamaModel teacher, int[][] windows, int batchWindows, long budgetBytes) {
        long t = windows[0].length;
        long vocab = teacher.config().vocabSize();
        long bytes = windows.length * t * vocab * teacher.dataType().getNumOfBytes();
        if (bytes > budgetBytes) {
            return live(teacher, windows);
        }
        NDManager manager = teacher.manager().newSubManager();
        try {
            NDArray cached = manager.create(new Shape(windows.length, t, vocab), teacher.dataType());
            int start = 0;
            for (int[][] batch : CalibrationData.batches(windows, batchWindows)) {
                try (NDManager scratch = teacher.manager().newSubManager()) {
                    NDArray logp = teacher.forward(TokenArrays.ids(scratch, batch), ActivationTap.NONE).logSoftmax(-1);
                    cached.set(new NDIndex("{}:{}", start, start + batch.length), logp);
                }
                start += batch.length;
            }
            return new TeacherTargets(teacher, windows, manager, cached);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    int size() {
        return windows.length;
    }

    boolean isCached() {
        return cached != null;
    }

    /** The windows at {@code indices}, in that order. */
    int[][] windows(int[] indices) {
        int[][] out = new int[indices.length][];
        for (int i = 0; i < indices.length; i++) {
            out[i] = windows[indices[i]];
        }
        return out;
    }

    /**
     * Teacher log-probabilities (or logits: the same after a log-softmax) of the windows at {@code indices}, shape
     * (indices, T, vocab), attached to {@code into}; never part of any graph.
     */
    NDArray logits(NDManager into, int[] indices) {
        if (cached == null) {
            // the forward pass's intermediates die with its own sub-manager; only the logits move to {@code into}
            try (NDManager scratch = teacher.manager().newSubManager()) {
                NDArray logits = teacher.forward(TokenArrays.ids(scratch, windows(indices)), ActivationTap.NONE);
                logits.attach(into);
                return logits;
            }
        }
        long[] rows = new long[indices.length];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = indices[i];
        }
        return cached.get(into, new NDIndex("{}", into.create(rows)));
    }

    @Override
    public void close() {
        if (manager != null) {
            manager.close();
        }
    }
}
