package ai.hfprune.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * The keys and values every layer has computed so far for one sequence being generated, so that each new token's
 * forward pass runs on that token alone ({@link LlamaModel#forward(NDArray, KvCache)}) instead of on the whole
 * sequence again. Inference only. Keys are kept after RoPE and before grouped-query heads are repeated, shape
 * (batch, kv_heads, length, head_dim). Holds its arrays in a manager of its own: close it when the sequence is done.
 */
public final class KvCache implements AutoCloseable {

    private final NDManager manager;
    private final NDArray[] keys;
    private final NDArray[] values;
    private final int capacity;
    private int length;

    KvCache(NDManager manager, int layers, int capacity) {
        this.manager = manager;
        this.keys = new NDArray[layers];
        this.values = new NDArray[layers];
        this.capacity = capacity;
    }

    /** Positions cached: the position of the next token. */
    public int length() {
        return length;
    }

    /** The longest sequence this cache was made for (the position tables are computed for it). */
    public int capacity() {
        return capacity;
    }

    /**
     * Appends one layer's keys and values of the new positions and returns the whole sequence's (keys, values), which
     * the cache owns.
     */
    NDArray[] append(int layer, NDArray k, NDArray v) {
        keys[layer] = grown(keys[layer], k);
        values[layer] = grown(values[layer], v);
        return new NDArray[] {keys[layer], values[layer]};
    }

    /** Marks {@code positions} more as cached, once every layer has appended them. */
    void advance(int positions) {
        length += positions;
    }

    /**
     * {@code old} with {@code added} concatenated along the sequence axis, in this cache's manager. Concatenating
     * copies the cache once per token; at the lengths generated here that costs far less than one operator call.
     */
    private NDArray grown(NDArray old, NDArray added) {
        NDArray all = old == null ? added : old.concat(added, 2);
        all.attach(manager);
        if (old != null) {
            old.close();
        }
        return all;
    }

    @Override
    public void close() {
        manager.close();
    }
}
