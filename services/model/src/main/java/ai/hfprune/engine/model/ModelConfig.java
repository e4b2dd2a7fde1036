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
 * @param ropeScaling         config.json's {@code rope_scaling} (or GGUF's), applied by every forward pass
 * @param slidingWindow       the attention window of the layers that have one ({@link SlidingWindow#NONE}: none)
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
        int eosTokenId,
        RopeScaling ropeScaling,
        SlidingWindow slidingWindow) {

    /** Plain RoPE and full attention. */
    public ModelConfig(String architecture, int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers,
                       int numAttentionHeads, int numKeyValueHeads, int headDim, double rmsNormEps, double ropeTheta,
                       int maxPositionEmbeddings, boolean tieWordEmbeddings, boolean attentionBias, boolean qkNorm,
                       RopeStyle ropeStyle, int bosTokenId, int eosTokenId) {
        this(architecture, vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads,
                headDim, rmsNormEps, ropeTheta, maxPositionEmbeddings, tieWordEmbeddings, attentionBias, qkNorm, ropeStyle,
                bosTokenId, eosTokenId, RopeScaling.NONE, SlidingWindow.NONE);
    }

    public ModelConfig {
        if (ropeScaling == null || slidingWindow == null) {
            throw new IllegalArgumentException("ropeScaling and slidingWindow must not be null (use NONE)");
        }
        if (!slidingWindow.layers().isEmpty() && slidingWindow.layers().get(slidingWindow.layers().size() - 1) >= numHiddenLayers) {
            throw new IllegalArgumentException("sliding-window layers " + slidingWindow.layers() + " beyond the "
                    + numHiddenLayers + " layers");
        }
        ropeScaling.inverseFrequencies(ropeTheta, headDim); // a frequency-factor list of the wrong length fails here
        if (numAttentionHeads <= 0 || numKeyValueHeads <= 0 || numAttentionHeads % numKeyValueHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads (" + numAttentionHeads
                    + ") must be a positive multiple of num_key_value_heads (" + numKeyValueHeads + ")");
        }
        if (headDim <= 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be positive and even, got " + headDim);
        }
    }

    /** This config with other widths (a pruned model's bounds); everything else, RoPE scaling and window included, kept. */
    public ModelConfig withWidths(int intermediateSize, int numAttentionHeads, int numKeyValueHeads) {
        return new ModelConfig(architecture, vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, rmsNormEps, ropeTheta, maxPositionEmbeddings, tieWordEmbeddings, attentionBias,
                qkNorm, ropeStyle, bosTokenId, eosTokenId, ropeScaling, slidingWindow);
    }

    /** This config with Q/K rows paired as {@code style} says. */
    public ModelConfig withRopeStyle(RopeStyle style) {
        return new ModelConfig(architecture, vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, rmsNormEps, ropeTheta, maxPositionEmbeddings, tieWordEmbeddings, attentionBias,
                qkNorm, style, bosTokenId, eosTokenId, ropeScaling, slidingWindow);
    }

    /** The inverse frequency of each rotated pair, after {@link #ropeScaling}. */
    public double[] inverseFrequencies() {
        return ropeScaling.inverseFrequencies(ropeTheta, headDim);
    }

    /** Query heads per key/value head. */
    public int groupSize() {
        return numAttentionHeads / numKeyValueHeads;
    }
}
