package ai.hfprune.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

import java.util.List;

/**
 * The keys and values every layer has computed so far for one sequence being generated, so that each new token's
 * forward pass runs on that token alone ({@link LlamaModel#forward(NDArray, KvCache)}) instead of on the whole
 * sequence again. Inference only, one sequence (batch 1). Keys are kept after RoPE and before grouped-query heads are
 * repeated. Each layer's keys live in one tensor of shape (kv_heads, head_dim, capacity), transposed for the product
 * q·kᵀ, and its values in one of (kv_heads, capacity, head_dim), allocated up front (zeros): new positions are written
 * into them in place, so nothing is copied or concatenated per token. Also holds the generation's
 * {@link DecodeWeights}. Everything lives in a manager of its own: close the cache when the sequence is done.
 */
public final class KvCache implements AutoCloseable {

    private final NDManager manager;
    private final NDArray[] keys;
    private final NDArray[] values;
    private final DecodeWeights weights;
    private final int capacity;
    private int length;

    KvCache(NDManager manager, LlamaModel model, int capacity) {
        this.manager = manager;
        List<DecoderLayer> layers = model.layers();
        int headDim = model.config().headDim();
        this.keys = new NDArray[layers.size()];
        this.values = new NDArray[layers.size()];
        this.capacity = capacity;
        try {
            for (int l = 0; l < keys.length; l++) {
                long kv = layers.get(l).numKeyValueHeads(headDim); // per layer: pruned layers have fewer
                keys[l] = manager.zeros(new Shape(kv, headDim, capacity), model.dataType());
                values[l] = manager.zeros(new Shape(kv, capacity, headDim), model.dataType());
            }
            this.weights = new DecodeWeights(model, manager);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /** Positions cached: the position of the next token. */
    public int length() {
        return length;
    }

    /** The longest sequence this cache was made for (the position tables are computed for it). */
    public int capacity() {
        return capacity;
    }

    DecodeWeights weights() {
        return weights;
    }

    /**
     * Writes one layer's keys and values of the new positions, (1, kv_heads, seq, head_dim), after those cached, and
     * returns the whole sequence's (keys, values), (1, kv_heads, length + seq, head_dim): views of the cache attached
     * to {@code target}.
     */
    NDArray[] append(int layer, NDArray k, NDArray v, NDManager target) {
        long end = length + k.getShape().get(2);
        keys[layer].set(new NDIndex(":, :, {}:{}", length, end), k.squeeze(0).transpose(0, 2, 1));
        values[layer].set(new NDIndex(":, {}:{}", length, end), v.squeeze(0));
        NDArray keyView = view(keys[layer], new NDIndex(":, :, :{}", end), target);
        NDArray valueView = view(values[layer], new NDIndex(":, :{}", end), target);
        return new NDArray[] {keyView.transpose(0, 2, 1).expandDims(0), valueView.expandDims(0)};
    }

    /** A slice of one of the cache's tensors owned by {@code target}, never the tensor itself. */
    private static NDArray view(NDArray all, NDIndex index, NDManager target) {
        NDArray view = all.get(index);
        if (view == all) { // a slice of every position may come back as the tensor: target's manager would close it
            view = all.duplicate();
        }
        view.attach(target);
        return view;
    }

    /**
     * One new position of one layer (DecodeStep's path): k and v, (kv_heads, head_dim), are written at {@link #length()}.
     *
     * @return the layer's keys (kv_heads, head_dim, capacity) and values (kv_heads, capacity, head_dim), the cache's own
     *         tensors (not to be closed), zero beyond the positions written
     */
    NDArray[] write(int layer, NDArray k, NDArray v) {
        keys[layer].set(new NDIndex().addAllDim(2).addIndices(length), k);
        values[layer].set(new NDIndex().addAllDim().addIndices(length), v);
        return new NDArray[] {keys[layer], values[layer]};
    }

    /** Marks {@code positions} more as cached, once every layer has appended them. */
    void advance(int positions) {
        length += positions;
    }

    @Override
    public void close() {
        manager.close();
    }
}
