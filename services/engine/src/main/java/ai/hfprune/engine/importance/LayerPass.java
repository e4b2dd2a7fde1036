package ai.hfprune.engine.importance;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.DecoderLayer;
import ai.hfprune.engine.nn.LlamaModel;

/**
 * One decoder layer's forward pass, kept for its backward pass, and that backward pass: ∂L/∂ of the layer's output in;
 * the Taylor sums of its A and O and ∂L/∂ of its input out.
 *
 * <p>Autograd differentiates the attention block (x → h_mid, with a zero probe on O) and the MLP's norm (h_mid → z);
 * the rest of the MLP is differentiated here, where it takes fewer passes over the (tokens × intermediate) arrays:
 * <pre>
 *   A = silu(gate) ⊙ up,  gate = z·W_gateᵀ,  up = z·W_upᵀ,  y = h_mid + A·W_downᵀ
 *   ∂L/∂A    = g·W_down                                   (g = ∂L/∂y)
 *   ∂L/∂gate = ∂L/∂A ⊙ up ⊙ silu'(gate),  silu'(x) = σ(x)·(1 + x·(1 − σ(x)))
 *   ∂L/∂up   = ∂L/∂A ⊙ silu(gate)
 *   ∂L/∂z    = ∂L/∂gate·W_gate + ∂L/∂up·W_up,  ∂L/∂h_mid = g + (z's backward pass)
 * </pre>
 * up ⊙ silu'(gate) is formed in the forward pass, so a backward pass takes two products over those arrays, where
 * autograd's took six and a probe on A two more (issue 12). ∂L/∂A is g·W_down itself: A needs no probe.
 *
 * <p>Everything the pass keeps is in {@code manager}; the caller closes it after the layer's last backward pass.
 */
final class LayerPass {

    /** What one backward pass through the layer gives. */
    record Gradients(double[] mlpTaylor, double[] headTaylor, NDArray attentionBlockGradient, NDArray inputGradient) {
    }

    private final LlamaModel model;
    private final int layer;
    private final NDManager manager;
    private final NDArray input;
    private final NDArray hMidGraph;
    private final NDArray hMid;
    private final NDArray z;
    private final NDArray a;
    private final NDArray silu;
    private final NDArray upTimesSiluGrad;
    private final Probe probe;

    /**
     * Layer {@code l}'s forward pass from {@code input}, recording the graphs its backward pass needs (call it inside a
     * {@code GradientCollector}). {@code input} is made a leaf that records its gradient unless l = 0 (the embeddings
     * need none) and is moved to {@code manager}.
     */
    LayerPass(LlamaModel model, int l, NDArray input, NDManager manager) {
        this.model = model;
        this.layer = l;
        this.manager = manager;
        this.input = input;
        input.attach(manager);
        if (l > 0) {
            input.setRequiresGradient(true);
        }
        this.probe = new Probe(l, manager);
        this.hMidGraph = model.attentionBlock(l, input, probe);
        this.hMid = hMidGraph.stopGradient(); // the MLP block's input, as a leaf of its own graph
        hMid.setRequiresGradient(true);
        this.z = model.mlpInput(l, hMid);
        DecoderLayer weights = model.layers().get(l);
        NDArray zValue = z.stopGradient();
        NDArray gate = Linear.linear(zValue, weights.gateProj()).singletonOrThrow();
        NDArray up = Linear.linear(zValue, weights.upProj()).singletonOrThrow();
        NDArray sigmoid = Activation.sigmoid(gate);
        this.silu = gate.mul(sigmoid); // as LlamaModel.silu: the same operations, so A is the forward pass's own
        // in place where an input is not needed after: a pass over an array in cache's reach of its own takes about half
        // the time of one into a new array here (1.1 against 2.5 ms on a 2048 x 1408 one)
        // up ⊙ σ(gate)·(1 + gate − silu(gate)) = up ⊙ silu'(gate), in gate's place
        this.upTimesSiluGrad = gate.subi(silu).addi(1).muli(sigmoid).muli(up);
        sigmoid.close();
        this.a = up.muli(silu); // silu(gate) ⊙ up, as LlamaModel.mlp, in up's place
    }

    /** Where everything of this pass is: the caller closes it after the layer's last backward pass. */
    NDManager manager() {
        return manager;
    }

    /**
     * The layer's output h_mid + A·W_downᵀ, the next layer's input, without a graph, in this pass's manager until the
     * caller moves it. Computed here, on demand: the recompute mode has it from its first pass already.
     */
    NDArray output() {
        return Linear.linear(a, model.layers().get(layer).downProj()).singletonOrThrow().addi(hMidGraph.stopGradient());
    }

    /** A, the input of down_proj, shape (batch, seq, intermediate). */
    NDArray activation() {
        return a;
    }

    /** O, each head's attention output, shape (batch, heads, seq, head_dim). */
    NDArray attentionOutput() {
        return probe.o;
    }

    /**
     * One criterion's backward pass through the layer.
     *
     * @param g           ∂L/∂ of the layer's output, shape (batch, seq, hidden)
     * @param retainGraph whether another criterion's backward pass follows (its gradients then start from zero)
     * @return the Taylor sums, ∂L/∂h_mid (what o_proj's output adds to the residual stream), and ∂L/∂ of the input
     *         (null for layer 0), all in this pass's manager
     */
    Gradients backward(NDArray g, boolean retainGraph) {
        DecoderLayer weights = model.layers().get(layer);
        NDArray gradA = g.matMul(weights.downProj());
        gradA.attach(manager); // DJL attaches a result to its first operand's manager, here g's
        double[] mlpTaylor = TaylorSums.perNeuron(a, gradA);
        NDArray gradGate = gradA.mul(upTimesSiluGrad);
        NDArray gradZ = gradGate.matMul(weights.gateProj());
        gradGate.close();
        NDArray gradUp = gradA.muli(silu); // in gradA's place
        NDArray viaUp = gradUp.matMul(weights.upProj());
        gradUp.close();
        gradZ.addi(viaUp);
        viaUp.close();
        JniUtils.backward((PtNDArray) z, (PtNDArray) gradZ, retainGraph, false);
        gradZ.close();
        NDArray gradHMid = hMid.getGradient().add(g);
        JniUtils.backward((PtNDArray) hMidGraph, (PtNDArray) gradHMid, retainGraph, false);
        double[] headTaylor = TaylorSums.perHead(probe.o, probe.oProbe.getGradient());
        NDArray gradInput = layer > 0 ? input.getGradient() : null;
        if (retainGraph) { // the next criterion's gradients accumulate from zero
            gradInput = gradInput == null ? null : gradInput.duplicate();
            JniUtils.zeroGrad((PtNDArray) hMid);
            JniUtils.zeroGrad((PtNDArray) probe.oProbe);
            if (layer > 0) {
                JniUtils.zeroGrad((PtNDArray) input);
            }
        }
        return new Gradients(mlpTaylor, headTaylor, gradHMid, gradInput);
    }

    /** A zero probe on the layer's O, whose gradient is ∂L/∂O. */
    private static final class Probe implements ActivationTap {
        private final int layer;
        private final NDManager manager;
        private NDArray o;
        private NDArray oProbe;

        Probe(int layer, NDManager manager) {
            this.layer = layer;
            this.manager = manager;
        }

        @Override
        public NDArray attentionOutput(int l, NDArray output) {
            if (l != layer) {
                throw new IllegalStateException("the probe of layer " + layer + " saw layer " + l);
            }
            o = output.stopGradient();
            oProbe = ZeroProbe.like(manager, output);
            return output.add(oProbe);
        }
    }
}
