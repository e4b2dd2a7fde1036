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
}
