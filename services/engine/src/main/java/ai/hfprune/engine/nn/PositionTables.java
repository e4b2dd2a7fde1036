package ai.hfprune.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeStyle;

/**
 * The rotary embedding's (cos, sin), with the config's RoPE scaling, and the causal masks (plain, and with the
 * sliding window if the model has one), computed once for the longest length asked for so far and
 * handed out as slices. A longer request replaces the tables (the old ones are closed: a slice handed out earlier
 * keeps its own reference to their storage), so the memory held is that of one length, not one table per length.
 * Thread-safe: scorers in one JVM share a model.
 */
final class PositionTables implements AutoCloseable {

    private final ModelConfig config;
    private final NDManager manager;
    private final DataType dataType;
    private int length;
    /** (length, head_dim), laid out for the model's {@link RopeStyle}. */
    private NDArray cos;
    private NDArray sin;
    /** (length, length) additive mask: 0 where a position may attend, a large negative number above the diagonal. */
    private NDArray mask;
    /** The same with the model's sliding window: also masked where i - j >= window; null without a window. */
    private NDArray windowMask;
    private NDArray rotation;
    private NDArray identity;

    PositionTables(ModelConfig config, NDManager manager, DataType dataType) {
        this.config = config;
        this.manager = manager;
        this.dataType = dataType;
    }

    /** (cos, sin) of positions [from, to), shape (to - from, head_dim), attached to {@code target}. */
    synchronized NDArray[] rope(int from, int to, NDManager target) {
        ensure(to);
        NDIndex rows = new NDIndex("{}:{}", from, to);
        return new NDArray[] {slice(cos, rows, target), slice(sin, rows, target)};
    }

    /** The mask of query positions [from, to) over key positions [0, to), attached to {@code target}. */
    synchronized NDArray causalMask(int from, int to, NDManager target) {
        ensure(to);
        return slice(mask, new NDIndex("{}:{}, :{}", from, to, to), target);
    }

    /**
     * The causal mask's row of query {@code position} over keys [0, width) (width may pass the position: those keys
     * are masked), shape (1, width), attached to {@code target}.
     */
    synchronized NDArray maskRow(int position, int width, NDManager target) {
        ensure(Math.max(position + 1, width));
        return slice(mask, new NDIndex("{}:{}, :{}", position, position + 1, width), target);
    }

    /**
     * The mask of the layers with a sliding window, as {@link #causalMask}; null when the window hides nothing from
     * positions below {@code to} (none, or to ≤ window), where those layers use the causal mask.
     */
    synchronized NDArray slidingWindowMask(int from, int to, NDManager target) {
        if (!config.slidingWindow().bitesAt(to)) {
            return null;
        }
        ensure(to);
        return slice(windowMask, new NDIndex("{}:{}, :{}", from, to, to), target);
    }

    /**
     * The (head_dim, head_dim) signed permutation R with x·R = rotate(x) in the model's {@link RopeStyle} (HALF:
     * (x1, x2) to (-x2, x1) by halves; INTERLEAVED: each pair (a, b) to (-b, a)), made once.
     */
    private NDArray rotation() {
        if (rotation == null) {
            int d = config.headDim();
            int half = d / 2;
            double[] r = new double[d * d];
            for (int i = 0; i < half; i++) {
                int a = config.ropeStyle() == RopeStyle.HALF ? i : 2 * i;
                int b = config.ropeStyle() == RopeStyle.HALF ? i + half : 2 * i + 1;
                r[b * d + a] = -1; // rotated[a] = -x[b]
                r[a * d + b] = 1;  // rotated[b] = x[a]
            }
            rotation = converted(r, new Shape(d, d));
            double[] e = new double[d * d];
            for (int i = 0; i < d; i++) {
                e[i * d + i] = 1;
            }
            identity = converted(e, new Shape(d, d));
        }
        return rotation;
    }

    /**
     * RoPE at {@code position} as one (head_dim, head_dim) matrix M = diag(cos) + R·diag(sin), with R the
     * {@link #rotation}: x·M = x·cos + rotate(x)·sin, the rotation of {@link LlamaModel}'s RoPE in one product (each
     * column of M has two non-zeros, so each output sums the same two products). Attached to {@code target}; built
     * from the tables in a few calls once per token and shared by every layer.
     */
    synchronized NDArray ropeMatrix(int position, NDManager target) {
        ensure(position + 1);
        NDArray r = rotation();
        NDIndex row = new NDIndex("{}:{}", position, position + 1); // (1, head_dim): scales the columns
        NDArray c = slice(cos, row, target);
        NDArray s = slice(sin, row, target);
        return c.mul(identity).add(s.mul(r)); // results join the manager of the array a call is made on: target's
    }

    /** Computes the tables for at least {@code length} positions (a generation knows its longest length up front). */
    synchronized void ensure(int needed) {
        if (needed <= length) {
            return;
        }
        closeTables();
        int headDim = config.headDim();
        int half = headDim / 2;
        double[] inverseFrequencies = config.inverseFrequencies(); // after rope_scaling
        double[] c = new double[needed * headDim];
        double[] s = new double[needed * headDim];
        for (int pos = 0; pos < needed; pos++) {
            for (int i = 0; i < half; i++) {
                double angle = pos * inverseFrequencies[i];
                // HALF: frequency i sits at i and i + half; INTERLEAVED: at 2i and 2i + 1
                int a = config.ropeStyle() == RopeStyle.HALF ? i : 2 * i;
                int b = config.ropeStyle() == RopeStyle.HALF ? i + half : 2 * i + 1;
                c[pos * headDim + a] = c[pos * headDim + b] = Math.cos(angle);
                s[pos * headDim + a] = s[pos * headDim + b] = Math.sin(angle);
            }
        }
        Shape shape = new Shape(needed, headDim);
        cos = converted(c, shape);
        sin = converted(s, shape);
        double[] m = new double[needed * needed];
        for (int i = 0; i < needed; i++) {
            for (int j = i + 1; j < needed; j++) {
                m[i * needed + j] = -1e30;
            }
        }
        mask = converted(m, new Shape(needed, needed));
        int window = config.slidingWindow().size();
        if (config.slidingWindow().bitesAt(needed)) { // transformers' sliding_window_overlay: kv_idx > q_idx - window
            for (int i = window; i < needed; i++) {
                for (int j = 0; j <= i - window; j++) {
                    m[i * needed + j] = -1e30;
                }
            }
            windowMask = converted(m, new Shape(needed, needed));
        }
        length = needed;
    }

    /**
     * {@code values} as a tensor of the model's type in memory libtorch owns. A tensor created from Java values wraps
     * a direct buffer that only its NDArray keeps from the garbage collector, and toType to the same type returns that
     * very tensor: slices of it would read freed memory once it is closed (in float64 models, wrong gradients).
     */
    private NDArray converted(double[] values, Shape shape) {
        try (NDArray staged = manager.create(values, shape)) {
            return staged.getDataType() == dataType ? staged.duplicate() : staged.toType(dataType, true);
        }
    }

    /** A view of {@code table} owned by {@code target}, so that closing the caller's manager frees the view. */
    private static NDArray slice(NDArray table, NDIndex index, NDManager target) {
        NDArray view = table.get(index);
        if (view == table) { // never hand out the table itself: the caller's manager would close it
            view = table.duplicate();
        }
        view.attach(target);
        return view;
    }

    @Override
    public synchronized void close() {
        closeTables();
        for (NDArray a : new NDArray[] {rotation, identity}) {
            if (a != null) {
                a.close();
            }
        }
        rotation = identity = null;
    }

    private void closeTables() {
        for (NDArray a : new NDArray[] {cos, sin, mask, windowMask}) {
            if (a != null) {
                a.close();
            }
        }
        cos = sin = mask = windowMask = null;
        length = 0;
    }
}
