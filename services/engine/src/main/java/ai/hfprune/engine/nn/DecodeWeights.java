package ai.hfprune.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.hfprune.engine.model.ModelConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * The model's weights in the shapes {@link DecodeStep} multiplies them in, made once per generation (held by its
 * {@link KvCache}, so they can never be stale: recovery trains the weights in place between generations). The
 * projections are views, not copies: q_proj as (kv_heads, group, head_dim, hidden), so W·x comes out with the query
 * heads already grouped by the key/value head they share, k_proj and v_proj as (kv_heads, head_dim, hidden), so
 * their products need no reshape into heads. The RMSNorm weights are copies multiplied by sqrt(hidden), the factor
 * that lets {@link DecodeStep#rmsNorm} take the mean of squares as one dot product (hidden floats per norm).
 */
final class DecodeWeights {

    /** One decoder layer's weights as {@link DecodeStep} uses them; biases null where the checkpoint has none. */
    record Layer(NDArray inputNorm, NDArray q, NDArray qBias, NDArray k, NDArray kBias, NDArray v, NDArray vBias,
                 NDArray postNorm) {
    }

    final List<Layer> layers;
    /** model.norm.weight × sqrt(hidden). */
    final NDArray finalNorm;
    /** hidden × rms_norm_eps, 0-d: sqrt(x·x + hidden·eps) = sqrt(hidden) × rms(x). */
    final NDArray hiddenEps;

    DecodeWeights(LlamaModel model, NDManager target) {
        ModelConfig config = model.config();
        int d = config.headDim();
        long hidden = model.embedTokens().getShape().get(1);
        NDArray sqrtHidden = target.create(Math.sqrt(hidden));
        hiddenEps = target.create(hidden * config.rmsNormEps());
        List<Layer> out = new ArrayList<>();
        for (DecoderLayer l : model.layers()) {
            int kv = l.numKeyValueHeads(d);
            int group = l.numHeads(d) / kv;
            out.add(new Layer(
                    scaled(l.inputLayernorm(), sqrtHidden, target),
                    view(l.qProj(), target, kv, group, d, hidden), biasView(l.qBias(), target, kv, group, d),
                    view(l.kProj(), target, kv, d, hidden), biasView(l.kBias(), target, kv, d),
                    view(l.vProj(), target, kv, d, hidden), biasView(l.vBias(), target, kv, d),
                    scaled(l.postAttentionLayernorm(), sqrtHidden, target)));
        }
        layers = List.copyOf(out);
        finalNorm = scaled(model.norm(), sqrtHidden, target);
    }

    /** A view of {@code weight} in another shape, owned by {@code target} (closing it leaves the weight alone). */
    private static NDArray view(NDArray weight, NDManager target, long... shape) {
        NDArray view = weight.reshape(shape);
        view.attach(target);
        return view;
    }

    private static NDArray biasView(NDArray bias, NDManager target, long... shape) {
        return bias == null ? null : view(bias, target, shape);
    }

    private static NDArray scaled(NDArray normWeight, NDArray sqrtHidden, NDManager target) {
        NDArray s = normWeight.mul(sqrtHidden);
        s.attach(target);
        return s;
    }
}
