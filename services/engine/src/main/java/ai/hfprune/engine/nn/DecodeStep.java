package ai.hfprune.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.core.Linear;

/**
 * Attention of one new token against the {@link KvCache}: what {@link LlamaModel}'s attention computes at a single
 * position, in fewer operator calls, because at one token per step generation is bound by the cost of each call
 * (tens of microseconds through DJL), not by arithmetic. With one position, q/k/v need no transpose into heads; RoPE
 * rotates with one product by a signed permutation matrix (exact: each output is one input, negated or not) instead of
 * slicing and stacking halves; and the query heads that share a key/value head are grouped against it, so keys and
 * values are never repeated.
 */
final class DecodeStep {

    private DecodeStep() {
    }

    /**
     * @param x        the normalized hidden state, (batch, 1, hidden)
     * @param rope     (cos, sin) of the token's position, (1, head_dim)
     * @param rotation (head_dim, head_dim): x·rotation is RoPE's rotate(x) in the model's layout
     * @return the attention block's output, (batch, 1, hidden)
     */
    static NDArray attention(LlamaModel model, int l, DecoderLayer layer, NDArray x, long batch, NDArray[] rope,
                             NDArray rotation, KvCache cache) {
        int headDim = model.config().headDim();
        int numHeads = layer.numHeads(headDim);
        int numKv = layer.numKeyValueHeads(headDim);
        NDArray q = linear(x, layer.qProj(), layer.qBias()).reshape(batch, numHeads, 1, headDim);
        NDArray k = linear(x, layer.kProj(), layer.kBias()).reshape(batch, numKv, 1, headDim);
        NDArray v = linear(x, layer.vProj(), layer.vBias()).reshape(batch, numKv, 1, headDim);
        if (layer.qNorm() != null) { // Qwen3 normalizes each head of q and k before RoPE
            q = model.rmsNorm(q, layer.qNorm());
            k = model.rmsNorm(k, layer.kNorm());
        }
        q = q.mul(rope[0]).add(q.matMul(rotation).mul(rope[1]));
        k = k.mul(rope[0]).add(k.matMul(rotation).mul(rope[1]));
        NDArray[] kv = cache.append(l, k, v); // (batch, kv_heads, length, head_dim)
        // query head h uses key/value head h / group (Hugging Face's repeat_kv): rows of one kv head's group together
        NDArray grouped = q.reshape(batch, numKv, numHeads / numKv, headDim);
        NDArray scores = grouped.matMul(kv[0].transpose(0, 1, 3, 2)).div(model.sqrtHeadDim()); // (batch, kv, group, length)
        NDArray o = scores.softmax(-1).matMul(kv[1]).reshape(batch, 1, (long) numHeads * headDim); // heads in order
        return linear(o, layer.oProj(), null);
    }

    private static NDArray linear(NDArray x, NDArray weight, NDArray bias) {
        return (bias == null ? Linear.linear(x, weight) : Linear.linear(x, weight, bias)).singletonOrThrow();
    }
}
