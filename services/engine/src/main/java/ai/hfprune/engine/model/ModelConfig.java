package ai.hfprune.engine.model;

/**
 * The shape of a LLaMA-family decoder, named as in Hugging Face's {@code config.json}.
 * Per-layer widths are not stored here: the forward pass reads them from each layer's weights,
 * so a non-uniformly pruned model needs nothing special.
 *
 * @param architecture        {@code LlamaForCausalLM}, {@code MistralForCausalLM}, {@code Qwen2ForCausalLM} or {@code Qwen3ForCausalLM}
 * @param attentionBias       q/k/v projections carry biases (Qwen2)
 * @param qkNorm              RMSNorm over each head of q and k before RoPE (Qwen3)
 * @param ropeStyle           how Q/K dimensions are paired for RoPE (see {@link RopeStyle})
 */
public record ModelConfig(
        String architecture,
        int vocabSize,
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int numKeyValueHeads,
        int headDim,
        double rmsNormEps,
        double ropeTheta,
        int maxPositionEmbeddings,
        boolean tieWordEmbeddings,
        boolean attentionBias,
        boolean qkNorm,
        RopeStyle ropeStyle,
        int bosTokenId,
        int eosTokenId) {

    public ModelConfig {
        if (numAttentionHeads <= 0 || numKeyValueHeads <= 0 || numAttentionHeads % numKeyValueHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads (" + numAttentionHeads
                    + ") must be a positive multiple of num_key_value_heads (" + numKeyValueHeads + ")");
        }
        if (headDim <= 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be positive and even, got " + headDim);
        }
    }

    /** Query heads per key/value head. */
    public int groupSize() {
        return numAttentionHeads / numKeyValueHeads;
    }
}
