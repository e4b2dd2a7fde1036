package ai.hfprune.engine.importance;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.hfprune.engine.nn.DecoderLayer;
import ai.hfprune.engine.nn.LlamaModel;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * bfloat16 copies of a model's decoder layers, made by the layer kernels ({@link ScoringPrecision#BF16}) once per
 * model, in a manager of the model's: they live as long as it does, however many scorers use them.
 */
final class Bf16Layers {
    private static final Map<LlamaModel, List<DecoderLayer>> COPIES = new WeakHashMap<>();

    private Bf16Layers() {
    }

    /** Every layer's weights as bfloat16; absent biases and norms stay null. */
    static synchronized List<DecoderLayer> of(LlamaModel model) {
        return COPIES.computeIfAbsent(model, m -> copy(m, m.manager().newSubManager()));
    }

    private static List<DecoderLayer> copy(LlamaModel model, NDManager manager) {
        LayerKernels kernels = LayerKernels.get();
        List<DecoderLayer> out = new ArrayList<>();
        for (DecoderLayer w : model.layers()) {
            out.add(new DecoderLayer(
                    bf16(kernels, w.inputLayernorm(), manager),
                    bf16(kernels, w.qProj(), manager), bf16(kernels, w.qBias(), manager),
                    bf16(kernels, w.kProj(), manager), bf16(kernels, w.kBias(), manager),
                    bf16(kernels, w.vProj(), manager), bf16(kernels, w.vBias(), manager),
                    bf16(kernels, w.oProj(), manager),
                    bf16(kernels, w.qNorm(), manager), bf16(kernels, w.kNorm(), manager),
                    bf16(kernels, w.postAttentionLayernorm(), manager),
                    bf16(kernels, w.gateProj(), manager), bf16(kernels, w.upProj(), manager),
                    bf16(kernels, w.downProj(), manager)));
        }
        return out;
    }

    private static NDArray bf16(LayerKernels kernels, NDArray weight, NDManager manager) {
        return weight == null ? null : kernels.run("to_bfloat16", manager, weight)[0];
    }
}
