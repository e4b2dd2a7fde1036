package ai.hfprune.pipeline.common;

import ai.hfprune.engine.model.CheckpointFiles;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.WeightCheck;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.Structure;

/**
 * The model a service is configured for: its identity, and the widths every partial of it must have.
 *
 * @param headDim    the attention head size: o_proj's input, whose Gram statistics travel, is heads × head_dim wide
 * @param hiddenSize the residual stream's width: the length of a layer's output sensitivities
 */
public record ModelInfo(ModelId id, LayerWidths widths, int headDim, int hiddenSize) {

    public static ModelInfo of(CheckpointFiles checkpoint) {
        return new ModelInfo(new ModelId(checkpoint.name(), checkpoint.sha256()),
                WeightCheck.layerWidths(checkpoint.config(), checkpoint.weights()), checkpoint.config().headDim(),
                checkpoint.config().hiddenSize());
    }

    public int numLayers() {
        return widths.numLayers();
    }

    /** The length of a partial's vector: MLP neurons or query heads of the layer. */
    public int width(int layer, Structure structure) {
        return structure == Structure.MLP ? widths.intermediateSize(layer) : widths.numAttentionHeads(layer);
    }

    /** The side of a layer's Gram matrix: down_proj's input (MLP) or o_proj's input (HEADS, heads × head_dim). */
    public int gramDim(int layer, Structure structure) {
        return structure == Structure.MLP ? widths.intermediateSize(layer) : widths.numAttentionHeads(layer) * headDim;
    }

    public String key() {
        return Keys.model(id);
    }
}
