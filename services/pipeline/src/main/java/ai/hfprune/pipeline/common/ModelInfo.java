package ai.hfprune.pipeline.common;

import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.WeightCheck;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.Structure;

/** The model a service is configured for: its identity, and the widths every partial of it must have. */
public record ModelInfo(ModelId id, LayerWidths widths) {

    public static ModelInfo of(Checkpoint checkpoint) {
        return new ModelInfo(new ModelId(checkpoint.name(), checkpoint.sha256()),
                WeightCheck.layerWidths(checkpoint.config(), checkpoint.weights()));
    }

    public int numLayers() {
        return widths.numLayers();
    }

    /** The length of a partial's vector: MLP neurons or query heads of the layer. */
    public int width(int layer, Structure structure) {
        return structure == Structure.MLP ? widths.intermediateSize(layer) : widths.numAttentionHeads(layer);
    }

    public String key() {
        return Keys.model(id);
    }
}
