package ai.hfprune.engine.nn;

import ai.djl.ndarray.NDArray;

/**
 * The weights of one decoder layer, named as in Hugging Face's {@code modeling_llama.py}.
 * Biases and q/k norms are null where the architecture has none. Widths are read from the weights,
 * so a layer pruned to fewer neurons or heads than its neighbours needs no other bookkeeping.
 */
public record DecoderLayer(
        NDArray inputLayernorm,
        NDArray qProj, NDArray qBias,
        NDArray kProj, NDArray kBias,
        NDArray vProj, NDArray vBias,
        NDArray oProj,
        NDArray qNorm, NDArray kNorm,
        NDArray postAttentionLayernorm,
        NDArray gateProj, NDArray upProj, NDArray downProj) {

    public int numHeads(int headDim) {
        return (int) (qProj.getShape().get(0) / headDim);
    }

    public int numKeyValueHeads(int headDim) {
        return (int) (kProj.getShape().get(0) / headDim);
    }

    public int intermediateSize() {
        return (int) gateProj.getShape().get(0);
    }
}
