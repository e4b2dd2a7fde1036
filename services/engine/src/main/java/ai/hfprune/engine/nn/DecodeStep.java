package ai.hfprune.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * One decoder layer for one new token against the {@link KvCache}: what {@link LlamaModel}'s layer computes at a single
 * position, in as few operator calls as it takes, because at one token per step generation is bound by the cost of
 * each call (several microseconds through DJL and libtorch), not by arithmetic. The hidden state is a vector
 * (hidden), so every projection is a matrix-vector product W·x on the weight as stored (libtorch's {@code mv}: about
 * half the time of {@code linear}'s matrix product with a transposed weight, which packs W at every call when x has a
 * single row), and q, k, v come out already split into heads ({@link DecodeWeights}); RoPE is one product by the
 * position's rotation matrix ({@link PositionTables#ropeMatrix}, for q with 1/sqrt(head_dim) folded in); the query
 * heads that share a key/value head are grouped against it, so keys and values are never repeated; keys and values are
 * written into the cache in place, and attention runs over the cache's whole capacity with the causal mask's row
 * (positions not yet written score -1e30, so they get probability 0 exactly), which saves slicing the cache.
 */
final class DecodeStep {

    private DecodeStep() {
    }

    /** One token through every layer and the head; hidden (hidden) to logits (vocab), the cache then holding it. */
    static NDArray token(LlamaModel model, NDArray hidden, KvCache cache) {
        NDManager step = hidden.getManager();
        PositionTables positions = model.positions();
        NDArray ropeK = positions.ropeMatrix(cache.length(), step);
        NDArray ropeQ = ropeK.div(model.sqrtHeadDim()); // q's scaling folded into its rotation: once per token
        NDArray mask = positions.maskRow(cache.length(), cache.capacity(), step);
        for (int l = 0; l < model.layers().size(); l++) {
            hidden = layer(model, l, hidden, ropeQ, ropeK, mask, cache);
        }
        cache.advance(1);
        NDArray x = rmsNorm(hidden, cache.weights().finalNorm, cache.weights());
        return project(model.lmHead(), null, x, step);
    }

    /**
     * @param hidden the layer's input, (hidden); its manager receives every intermediate
     * @param ropeQ  (head_dim, head_dim): RoPE at the token's position divided by sqrt(head_dim); {@code ropeK} without
     * @param mask   (1, capacity): the causal mask's row of the token's position
     * @return the layer's output, (hidden)
     */
    static NDArray layer(LlamaModel model, int l, NDArray hidden, NDArray ropeQ, NDArray ropeK, NDArray mask,
                         KvCache cache) {
        DecoderLayer layer = model.layers().get(l);
        DecodeWeights.Layer w = cache.weights().layers.get(l);
        NDManager step = hidden.getManager();
        NDArray x = rmsNorm(hidden, w.inputNorm(), cache.weights());
        NDArray q = project(w.q(), w.qBias(), x, step); // (kv_heads, group, head_dim)
        NDArray k = project(w.k(), w.kBias(), x, step); // (kv_heads, head_dim)
        NDArray v = project(w.v(), w.vBias(), x, step);
        if (layer.qNorm() != null) { // Qwen3 normalizes each head of q and k before RoPE
            q = model.rmsNorm(q, layer.qNorm());
            k = model.rmsNorm(k, layer.kNorm());
        }
        NDArray[] kv = cache.write(l, k.matMul(ropeK), v); // keys (kv, head_dim, capacity), values (kv, capacity, head_dim)
        NDArray scores = q.matMul(ropeQ).matMul(kv[0]).add(mask); // (kv_heads, group, capacity)
        NDArray o = scores.softmax(-1).matMul(kv[1]).reshape(-1); // heads in order
        hidden = hidden.add(project(layer.oProj(), null, o, step));
        x = rmsNorm(hidden, w.postNorm(), cache.weights());
        NDArray gate = project(layer.gateProj(), null, x, step);
        NDArray up = project(layer.upProj(), null, x, step);
        NDArray a = LlamaModel.silu(gate).mul(up); // silu(gate) ⊙ up
        return hidden.add(project(layer.downProj(), null, a, step));
    }

    /**
     * RMSNorm of a vector: x / sqrt(mean(x²) + eps) ⊙ w computed as x / sqrt(x·x + hidden·eps) ⊙ (w·sqrt(hidden)),
     * the same quantity in fewer calls (one dot product instead of a square and a mean).
     *
     * @param scaledWeight the norm's weight times sqrt(hidden), from {@link DecodeWeights}
     */
    static NDArray rmsNorm(NDArray x, NDArray scaledWeight, DecodeWeights weights) {
        return x.div(x.matMul(x).add(weights.hiddenEps).sqrt()).mul(scaledWeight);
    }

    /**
     * W·x (+ b) for a vector x, attached to {@code step} (a product made on W would join the model's manager). W may be
     * a view with several leading dimensions: the product comes out in those.
     */
    static NDArray project(NDArray weight, NDArray bias, NDArray x, NDManager step) {
        NDArray y = weight.matMul(x);
        y.attach(step);
        return bias == null ? y : y.add(bias);
    }
}
