package ai.hfprune.engine.prune;

import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.ModelConfig;

/**
 * A pruned model in memory: sliced weights under Hugging Face names, in the source's RoPE layout, and a config whose
 * width fields are the largest kept widths (each layer's own width is in its weights and in {@link #widths()}).
 */
public record PrunedModel(ModelConfig config, TensorSource weights, PrunePlan plan) {

    public LayerWidths widths() {
        return plan.prunedWidths();
    }

    public long parameters() {
        return ParameterCount.of(weights);
    }
}
