package ai.hfprune.engine.compensate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

/**
 * Sums G = Σ a·aᵀ per layer on the model's device, batch after batch, so that a batch costs one matrix product per
 * layer and structure and nothing crosses into Java until {@link #drain}. Each batch's product is computed in the
 * model's data type (float32 normally: with the ~10³ tokens of a batch, its rounding stays near 1e-6 relative) and
 * added to float64 totals, as the partial sums of the scores are.
 *
 * <p>Not thread-safe: one per scorer.
 */
public final class GramAccumulator implements AutoCloseable {

    private final NDManager manager;
    private final NDArray[] mlp;
    private final NDArray[] attn;
    /** null until a batch scored with a gradient criterion adds them: one scorer scores every batch with the same criteria */
    private NDArray[] mlpSensitivity;
    private NDArray[] attnSensitivity;
    private long tokens;
    private long windows;

    /** @param parent the model's manager: the sums live on its device, in a sub-manager of their own */
    public GramAccumulator(NDManager parent, int numLayers) {
        this.manager = parent.newSubManager();
        this.mlp = new NDArray[numLayers];
        this.attn = new NDArray[numLayers];
    }

    /** @param a the input of down_proj, shape (batch, seq, intermediate) */
    public void addMlp(int layer, NDArray a) {
        mlp[layer] = add(mlp[layer], a);
    }

    /** @param o the attention output per head, shape (batch, heads, seq, head_dim): o_proj's input is its heads side by side */
    public void addAttention(int layer, NDArray o) {
        NDArray perToken = o.transpose(0, 2, 1, 3); // (batch, seq, heads, head_dim): o_proj's input order
        attn[layer] = add(attn[layer], perToken.reshape(perToken.getShape().get(0), perToken.getShape().get(1), -1));
    }

    /**
     * Adds Σ over the batch's tokens of (∂L/∂y)² per hidden dimension, for what the attention block and the MLP block of
     * {@code layer} add to the residual stream.
     *
     * @param attnGradient ∂L/∂ of o_proj's output, shape (batch, seq, hidden)
     * @param mlpGradient  ∂L/∂ of down_proj's output, shape (batch, seq, hidden)
     */
    public void addSensitivity(int layer, NDArray attnGradient, NDArray mlpGradient) {
        if (attnSensitivity == null) {
            attnSensitivity = new NDArray[attn.length];
            mlpSensitivity = new NDArray[mlp.length];
        }
        attnSensitivity[layer] = addSquares(attnSensitivity[layer], attnGradient);
        mlpSensitivity[layer] = addSquares(mlpSensitivity[layer], mlpGradient);
    }

    /**
     * The intermediates are closed here: they would otherwise stay in the gradient's manager, which for the recompute
     * path's ∂L/∂ of a layer's output is the whole batch's (two float64 copies of it per layer).
     */
    private NDArray addSquares(NDArray total, NDArray gradient) {
        NDArray wide = gradient.toType(DataType.FLOAT64, false); // the gradient itself when it is float64 already
        NDArray squared = wide.square();
        NDArray squares = squared.sum(new int[] {0, 1});
        squared.close();
        if (wide != gradient) {
            wide.close();
        }
        if (total == null) {
            squares.attach(manager);
            return squares;
        }
        total.addi(squares);
        squares.close();
        return total;
    }

    /** Counts a batch once its layers were added. */
    public void countBatch(long batchWindows, long batchTokens) {
        windows += batchWindows;
        tokens += batchTokens;
    }

    private NDArray add(NDArray total, NDArray x) {
        long features = x.getShape().get(x.getShape().dimension() - 1);
        NDArray rows = x.stopGradient().reshape(-1, features);
        NDArray gram = rows.transpose().matMul(rows).toType(DataType.FLOAT64, false);
        if (total == null) {
            gram.attach(manager); // from the batch's manager, which closes after the batch, to the accumulator's
            return gram;
        }
        total.addi(gram);
        return total;
    }

    /** The sums so far as Java arrays; the accumulator starts again from zero. */
    public GramStats drain() {
        double[][] m = new double[mlp.length][];
        double[][] a = new double[attn.length][];
        for (int l = 0; l < mlp.length; l++) {
            if (mlp[l] == null || attn[l] == null) {
                throw new IllegalStateException("no statistics were added for layer " + l);
            }
            m[l] = mlp[l].toDoubleArray();
            a[l] = attn[l].toDoubleArray();
            mlp[l].close();
            attn[l].close();
            mlp[l] = null;
            attn[l] = null;
        }
        GramStats out = new GramStats(tokens, windows, m, a, drainSensitivity(mlpSensitivity), drainSensitivity(attnSensitivity));
        tokens = 0;
        windows = 0;
        mlpSensitivity = null;
        attnSensitivity = null;
        return out;
    }

    private static double[][] drainSensitivity(NDArray[] sums) {
        if (sums == null) {
            return null;
        }
        double[][] out = new double[sums.length][];
        for (int l = 0; l < sums.length; l++) {
            if (sums[l] == null) {
                throw new IllegalStateException("no output sensitivity was added for layer " + l);
            }
            out[l] = sums[l].toDoubleArray();
            sums[l].close();
        }
        return out;
    }

    public boolean isEmpty() {
        return tokens == 0;
    }

    @Override
    public void close() {
        manager.close();
    }
}
