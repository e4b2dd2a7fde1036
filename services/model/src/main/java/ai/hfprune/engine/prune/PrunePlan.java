package ai.hfprune.engine.prune;

import ai.hfprune.engine.model.LayerWidths;

import java.util.List;

/** The kept neurons and KV groups of every layer, and the options that chose them. */
public record PrunePlan(PruneOptions options, List<LayerPlan> layers) {

    public PrunePlan {
        layers = List.copyOf(layers);
        for (int l = 0; l < layers.size(); l++) {
            if (layers.get(l).layer() != l) {
                throw new IllegalArgumentException("layer plans must be in layer order");
            }
        }
    }

    public LayerPlan layer(int l) {
        return layers.get(l);
    }

    public LayerWidths originalWidths() {
        return widths(true);
    }

    public LayerWidths prunedWidths() {
        return widths(false);
    }

    private LayerWidths widths(boolean original) {
        int n = layers.size();
        int[] mlp = new int[n];
        int[] heads = new int[n];
        int[] kv = new int[n];
        for (LayerPlan p : layers) {
            int l = p.layer();
            mlp[l] = original ? p.originalMlp() : p.keptMlp().length;
            kv[l] = original ? p.originalKvGroups() : p.keptKvGroups().length;
            heads[l] = kv[l] * p.groupSize();
        }
        return new LayerWidths(mlp, heads, kv);
    }
}
