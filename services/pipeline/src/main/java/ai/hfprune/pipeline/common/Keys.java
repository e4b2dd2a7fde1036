package ai.hfprune.pipeline.common;

import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.Structure;

/** Record keys. The model part is name@sha256, so versions of a model never share a key. */
public final class Keys {
    private Keys() {
    }

    public static String model(ModelId model) {
        return model.getName() + "@" + model.getSha256();
    }

    /** model|criterion: coverage, triggers, results. */
    public static String modelCriterion(ModelId model, String criterion) {
        return model(model) + "|" + criterion;
    }

    /** model|criterion|layer|structure: importance partials. */
    public static String partial(ModelId model, String criterion, int layer, Structure structure) {
        return modelCriterion(model, criterion) + "|" + layer + "|" + structure;
    }

    /** model|criterion|version|layer|structure|chunk: a version's statistics on calibration-stats (partitioned by model|criterion). */
    public static String versionStats(ModelId model, String criterion, int version, int layer, Structure structure, int chunk) {
        return modelCriterion(model, criterion) + "|" + version + "|" + layer + "|" + structure + "|" + chunk;
    }
}
