package ai.hfprune.engine.model;

import java.util.Arrays;

/**
 * The width of every decoder layer: MLP neurons, query heads and key/value heads. A structurally pruned model may
 * have different widths per layer; {@link ModelConfig} then holds upper bounds and this record the exact values
 * (read from the weights by {@link WeightCheck#layerWidths}, written to config.json by {@link HfConfigs}).
 */
public record LayerWidths(int[] intermediateSizes, int[] numAttentionHeads, int[] numKeyValueHeads) {

    public LayerWidths {
        if (intermediateSizes.length != numAttentionHeads.length || intermediateSizes.length != numKeyValueHeads.length) {
            throw new IllegalArgumentException("per-layer widths differ in length: " + intermediateSizes.length + ", "
                    + numAttentionHeads.length + ", " + numKeyValueHeads.length);
        }
        intermediateSizes = intermediateSizes.clone();
        numAttentionHeads = numAttentionHeads.clone();
        numKeyValueHeads = numKeyValueHeads.clone();
    }

    /** Every layer as wide as the config says. */
    public static LayerWidths uniform(ModelConfig c) {
        int n = c.numHiddenLayers();
        int[] mlp = new int[n];
        int[] heads = new int[n];
        int[] kv = new int[n];
        Arrays.fill(mlp, c.intermediateSize());
        Arrays.fill(heads, c.numAttentionHeads());
        Arrays.fill(kv, c.numKeyValueHeads());
        return new LayerWidths(mlp, heads, kv);
    }

    public int numLayers() {
        return intermediateSizes.length;
    }

    public int intermediateSize(int layer) {
        return intermediateSizes[layer];
    }

    public int numAttentionHeads(int layer) {
        return numAttentionHeads[layer];
    }

    public int numKeyValueHeads(int layer) {
        return numKeyValueHeads[layer];
    }

    /** All layers alike, so config.json's scalar fields describe the model exactly. */
    public boolean isUniform() {
        return Arrays.stream(intermediateSizes).distinct().count() <= 1
                && Arrays.stream(numAttentionHeads).distinct().count() <= 1
                && Arrays.stream(numKeyValueHeads).distinct().count() <= 1;
    }

    public int maxIntermediateSize() {
        return Arrays.stream(intermediateSizes).max().orElse(0);
    }

    public int maxAttentionHeads() {
        return Arrays.stream(numAttentionHeads).max().orElse(0);
    }

    public int maxKeyValueHeads() {
        return Arrays.stream(numKeyValueHeads).max().orElse(0);
    }

    @Override
    public int[] intermediateSizes() {
        return intermediateSizes.clone();
    }

    @Override
    public int[] numAttentionHeads() {
        return numAttentionHeads.clone();
    }

    @Override
    public int[] numKeyValueHeads() {
        return numKeyValueHeads.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LayerWidths w && Arrays.equals(intermediateSizes, w.intermediateSizes)
                && Arrays.equals(numAttentionHeads, w.numAttentionHeads) && Arrays.equals(numKeyValueHeads, w.numKeyValueHeads);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * Arrays.hashCode(intermediateSizes) + Arrays.hashCode(numAttentionHeads))
                + Arrays.hashCode(numKeyValueHeads);
    }

    @Override
    public String toString() {
        return "LayerWidths[intermediate=" + Arrays.toString(intermediateSizes) + ", heads="
                + Arrays.toString(numAttentionHeads) + ", kvHeads=" + Arrays.toString(numKeyValueHeads) + "]";
    }
}
