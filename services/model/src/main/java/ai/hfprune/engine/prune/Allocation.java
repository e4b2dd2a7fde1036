package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;

import java.util.Locale;

/** How the pruned width is spread over the layers. */
public enum Allocation {
    /** The same ratio in every layer, ranked within the layer (HFPrune's default): config.json stays standard. */
    UNIFORM,
    /**
     * One ranking across layers of scores normalized by their layer's sum, with a floor per layer: widths differ per
     * layer and config.json lists them (see {@link ai.hfprune.engine.model.HfConfigs#write}).
     */
    GLOBAL;

    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static Allocation parse(String s) {
        for (Allocation a : values()) {
            if (a.id().equalsIgnoreCase(s.trim())) {
                return a;
            }
        }
        throw new HfpruneException("unknown allocation '" + s + "' (choose uniform or global)");
    }
}
