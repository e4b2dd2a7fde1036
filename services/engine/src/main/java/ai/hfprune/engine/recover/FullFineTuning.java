package ai.hfprune.engine.recover;

import ai.djl.ndarray.NDArray;
import ai.hfprune.engine.io.MapTensorSource;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;

import java.util.Map;

/**
 * Every weight of the model is trainable, norms and embeddings included; Adam updates the model's own arrays in
 * place. Tied embeddings are one array under {@code model.embed_tokens.weight}, so the embedding and lm_head
 * gradients add up into one parameter, as in PyTorch.
 */
final class FullFineTuning implements Adaptation {

    private final LlamaModel model;
    private final TensorSource original;
    private final Map<String, NDArray> parameters;

    FullFineTuning(LlamaModel model, TensorSource original) {
        this.model = model;
        this.original = original;
        this.parameters = model.namedWeights();
        parameters.values().forEach(w -> w.setRequiresGradient(true));
    }

    @Override
    public LlamaModel model() {
        return model;
    }

    @Override
    public NDArray logits(NDArray inputIds) {
        return model.forward(inputIds, ActivationTap.NONE);
    }

    @Override
    public Map<String, NDArray> parameters() {
        return parameters;
    }

    @Override
    public MapTensorSource export() {
        return Adaptation.export(original, parameters::get);
    }

    @Override
    public void close() {
        model.close();
    }
}
