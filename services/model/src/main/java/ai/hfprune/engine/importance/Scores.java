package ai.hfprune.engine.importance;

/**
 * Finalized importance: higher is more important. {@code mlp[l][i]} for MLP neuron i of layer l,
 * {@code heads[l][h]} for query head h.
 */
public record Scores(Criterion criterion, long windows, long tokens, double[][] mlp, double[][] heads) {

    /** A KV group's score: the sum of its query heads' scores. */
    public double[] kvGroups(int layer, int numKeyValueHeads) {
        double[] h = heads[layer];
        int group = h.length / numKeyValueHeads;
        double[] out = new double[numKeyValueHeads];
        for (int i = 0; i < h.length; i++) {
            out[i / group] += h[i];
        }
        return out;
    }
}
