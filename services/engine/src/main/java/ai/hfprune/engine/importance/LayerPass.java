package ai.hfprune.engine.importance;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.nn.DecoderLayer;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.nn.TokenArrays;


/**
 * One decoder layer's forward pass, kept for its backward pass, and that backward pass: ∂L/∂ of the layer's output in;
 * the Taylor sums of its A and O and ∂L/∂ of its input out. Both are written out in {@link LayerKernels} (no autograd):
 * <pre>
 *   MLP:  A = silu(gate) ⊙ up,  gate = z·W_gateᵀ,  up = z·W_upᵀ,  z = post_attention_layernorm(h_mid),
 *         y = h_mid + A·W_downᵀ
 *         ∂L/∂A = g·W_down (g = ∂L/∂y),  ∂L/∂gate = ∂L/∂A ⊙ up ⊙ silu'(gate),  ∂L/∂up = ∂L/∂A ⊙ silu(gate),
 *         ∂L/∂z = ∂L/∂gate·W_gate + ∂L/∂up·W_up,  ∂L/∂h_mid = g + RMSNorm's backward pass of ∂L/∂z
 *   attention:  h_mid = h + O'·W_oᵀ, O = softmax(q·kᵀ + mask)·v per head (O' its heads side by side),
 *         ∂L/∂O = ∂L/∂h_mid·W_o; then through the two products, softmax, RoPE, q/k/v and input_layernorm to ∂L/∂h
 * </pre>
 * up ⊙ silu'(gate) is formed in the forward pass, so each criterion's backward pass takes two products over the
 * (tokens × intermediate) arrays; ∂L/∂A and ∂L/∂O are products the backward pass forms anyway, so neither needs a probe.
 * Layer 0's backward pass stops at ∂L/∂O: the embeddings need no gradient.
 *
 * <p>Everything the pass keeps is in {@code manager}; the caller closes it after the layer's last backward pass.
 */
final class LayerPass {

    /** What one backward pass through the layer gives. */
    record Gradients(double[] mlpTaylor, double[] headTaylor, NDArray attentionBlockGradient, NDArray inputGradient) {
    }

    private static final int H_MID = 0;
    private static final int O = 1;
    private static final int A = 0;

    private final LayerKernels kernels = LayerKernels.get();
    private final LlamaModel model;
    private final DecoderLayer weights;
    private final int layer;
    private final NDManager manager;
    private final NDArray input;
    private final LlamaModel.AttentionTables tables;
    /** An absent bias or norm as the kernels take it: an empty tensor (one a pass). */
    private final NDArray empty;
    private final NDArray[] attention;
    private final NDArray[] mlp;

    /**
     * Layer {@code l}'s forward pass from {@code input}, which is moved to {@code manager}, with the layer's weights
     * {@code w} (the model's own, or copies in another type, as {@code input} is).
     */
    LayerPass(LlamaModel model, DecoderLayer w, int l, NDArray input, NDManager manager) {
        this.model = model;
        this.weights = w;
        this.layer = l;
        this.manager = manager;
        this.input = input;
        input.attach(manager);
        this.empty = manager.zeros(new Shape(0), model.dataType());
        int headDim = model.config().headDim();
        double eps = model.config().rmsNormEps();
        this.tables = model.attentionTables(l, (int) input.getShape().get(1), manager);
        this.attention = kernels.run("attention_block", manager, input, w.inputLayernorm(), w.qProj(), orEmpty(w.qBias()),
                w.kProj(), orEmpty(w.kBias()), w.vProj(), orEmpty(w.vBias()), orEmpty(w.qNorm()), orEmpty(w.kNorm()),
                w.oProj(), tables.cosQ(), tables.sinQ(), tables.cosK(), tables.sinK(), tables.mask(), eps,
                w.numHeads(headDim), w.numKeyValueHeads(headDim), interleaved(), model.scoreElements());
        this.mlp = kernels.run("mlp_forward", manager, attention[H_MID], w.postAttentionLayernorm(), w.gateProj(),
                w.upProj(), eps);
    }

    /** Where everything of this pass is: the caller closes it after the layer's last backward pass. */
    NDManager manager() {
        return manager;
    }

    /**
     * The layer's output h_mid + A·W_downᵀ, the next layer's input, in this pass's manager until the caller moves it.
     * Computed here, on demand: the recompute mode has it from its first pass already.
     */
    NDArray output() {
        return kernels.run("mlp_output", manager, attention[H_MID], mlp[A], weights.downProj())[0];
    }

    /** A, the input of down_proj, shape (batch, seq, intermediate). */
    NDArray activation() {
        return mlp[A];
    }

    /** O, each head's attention output, shape (batch, heads, seq, head_dim). */
    NDArray attentionOutput() {
        return attention[O];
    }

    /**
     * One criterion's backward pass through the layer; the pass's own arrays are left as they were, so several
     * criteria may follow one another.
     *
     * @param g ∂L/∂ of the layer's output, shape (batch, seq, hidden)
     * @return the Taylor sums, ∂L/∂h_mid (what o_proj's output adds to the residual stream), and ∂L/∂ of the input
     *         (null for layer 0), all in this pass's manager
     */
    Gradients backward(NDArray g) {
        DecoderLayer w = weights;
        int headDim = model.config().headDim();
        NDArray[] viaMlp = kernels.run("mlp_backward", manager, g, attention[H_MID], mlp, w.postAttentionLayernorm(),
                w.gateProj(), w.upProj(), w.downProj());
        NDArray gradHMid = viaMlp[1];
        NDArray[] viaAttention = kernels.run("attention_block_backward", manager, attention, input, gradHMid,
                w.inputLayernorm(), w.qProj(), w.kProj(), w.vProj(), orEmpty(w.qNorm()), orEmpty(w.kNorm()), w.oProj(),
                tables.cosQ(), tables.sinQ(), tables.cosK(), tables.sinK(), w.numHeads(headDim),
                w.numKeyValueHeads(headDim), interleaved(), layer > 0);
        double[] mlpTaylor = sums(viaMlp[0]);
        double[] headTaylor = sums(viaAttention[0]);
        NDArray gradInput = layer > 0 ? viaAttention[1] : null;
        if (gradInput == null) {
            viaAttention[1].close();
        }
        return new Gradients(mlpTaylor, headTaylor, gradHMid, gradInput);
    }

    private boolean interleaved() {
        return model.config().ropeStyle() == RopeStyle.INTERLEAVED;
    }

    private NDArray orEmpty(NDArray weight) {
        return weight != null ? weight : empty;
    }

    /** A kernel's Taylor sums as doubles; closes the array. */
    private static double[] sums(NDArray sums) {
        try (sums) {
            return TokenArrays.doubles(sums);
        }
    }
}
