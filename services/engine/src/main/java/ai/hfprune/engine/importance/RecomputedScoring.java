package ai.hfprune.engine.importance;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.GradientLock;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.nn.TokenArrays;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * {@link ScoringMemory#RECOMPUTE}: the scoring pass with memory that grows with neither depth nor vocabulary.
 *
 * <ol>
 *   <li>A forward pass without gradients keeps only each decoder layer's input h_l (and sums what the activation
 *       criterion and the Gram statistics need, layer by layer);</li>
 *   <li>the head's loss is differentiated over chunks of positions ({@link ChunkedHead}), giving ∂L/∂h_L;</li>
 *   <li>for l = L−1 … 0, layer l is recomputed from h_l with gradient recording and a zero probe on its O, and
 *       differentiated with the incoming g = ∂L/∂h_{l+1} injected (the backward pass of Σ y ⊙ g, with down_proj's
 *       product replaced by its known input gradient ∂L/∂A = g·W_down): the probe's gradient is ∂L/∂O of this layer,
 *       and h_l's is the ∂L/∂h_l passed down.</li>
 * </ol>
 * Only one layer's graph (its T × T attention probabilities among it) exists at a time, in a manager of its own.
 * Several gradient criteria share the forward pass and each recomputation.
 */
final class RecomputedScoring {

    /**
     * The recomputation's projections: down_proj's product is left out (zeros in its place), as the backward pass
     * does not need it; its input's gradient is computed directly (see the seed in {@link #score}). This saves a third
     * of the recomputed MLP.
     */
    private static final LlamaModel.Projection WITHOUT_DOWN_PROJ = (layer, name, x, weight, bias) -> {
        if (!name.equals("mlp.down_proj")) {
            return LlamaModel.Projection.linear(layer, name, x, weight, bias);
        }
        Shape in = x.getShape();
        Shape out = new Shape(in.get(0), in.get(1), weight.getShape().get(0));
        return x.getManager().zeros(new Shape(), x.getDataType()).broadcast(out); // a broadcast 0-d zero: no fill
    };

    private final LlamaModel model;
    private final long headChunkElements;

    /** For tests: sees the batch's manager after each layer's backward pass (layer index, manager). */
    private final BiConsumer<Integer, NDManager> afterLayer;

    RecomputedScoring(LlamaModel model, long headChunkElements) {
        this(model, headChunkElements, (l, batch) -> { });
    }

    RecomputedScoring(LlamaModel model, long headChunkElements, BiConsumer<Integer, NDManager> afterLayer) {
        this.model = model;
        this.headChunkElements = headChunkElements;
        this.afterLayer = afterLayer;
    }

    /** As {@link ImportanceScorer#score(int[][], java.util.Set, GramAccumulator)} for the criteria that need data. */
    Map<Criterion, Partial> score(int[][] windows, List<Criterion> gradientCriteria, boolean activation, GramAccumulator stats) {
        int layers = model.layers().size();
        long tokens = (long) windows.length * windows[0].length;
        Map<Criterion, Partial> out = new EnumMap<>(Criterion.class);
        try (NDManager batch = model.manager().newSubManager()) {
            NDArray ids = TokenArrays.ids(batch, windows);
            if (stats != null) {
                stats.countBatch(windows.length, tokens);
            }
            FirstPassTap first = new FirstPassTap(layers, activation, stats);
            NDArray[] inputs = new NDArray[layers + 1]; // inputs[l]: the input of layer l; inputs[layers]: the last output
            inputs[0] = model.embed(ids);
            for (int l = 0; l < layers; l++) {
                try (NDManager layer = batch.newSubManager()) {
                    inputs[l].tempAttach(layer); // the layer's intermediates go to its manager; h_l returns to batch
                    inputs[l + 1] = model.layer(l, inputs[l], first);
                    inputs[l + 1].attach(batch);
                }
            }
            if (activation) {
                out.put(Criterion.ACTIVATION, new Partial(Criterion.ACTIVATION, windows.length, tokens, first.mlp, first.heads));
            }
            if (gradientCriteria.isEmpty()) {
                return out;
            }
            int n = gradientCriteria.size();
            double[][][] mlp = new double[n][layers][];
            double[][][] heads = new double[n][layers][];
            synchronized (GradientLock.LOCK) {
                try (GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector()) {
                    NDArray[] g = ChunkedHead.backward(model, inputs[layers], ids, gradientCriteria, headChunkElements).gradients();
                    inputs[layers].close();
                    for (int l = layers - 1; l >= 0; l--) {
                        try (NDManager layer = batch.newSubManager()) {
                            NDArray x = inputs[l];
                            x.attach(layer); // not needed after this layer
                            if (l > 0) { // layer 0's input, the embeddings, needs no gradient: its q, k, v and
                                // attention are then not differentiated (its A and O get theirs all the same)
                                x.setRequiresGradient(true);
                            }
                            LayerProbes probes = new LayerProbes(l, layer, stats != null);
                            NDArray y = model.layer(l, x, probes, WITHOUT_DOWN_PROJ); // y = h_mid + 0
                            NDArray downProj = model.layers().get(l).downProj();
                            for (int i = 0; i < n; i++) {
                                boolean last = i == n - 1;
                                // the layer's output is h_mid + A·W_downᵀ: ∂L/∂h_mid = g and ∂L/∂A = g·W_down, so
                                // ⟨h_mid, g⟩ + ⟨A, g·W_down⟩ has the gradients of L upstream of the layer's output
                                // (dot products of flat views: their backward passes give g and g·W_down exactly)
                                // g lives in the batch's manager, so what is computed from it would too (DJL attaches a
                                // result to its first operand's manager): moved to the layer's, or every layer's
                                // g·W_down (T × intermediate) and view of g stayed until the batch ended
                                NDArray gradA = g[i].matMul(downProj);
                                NDArray gFlat = g[i].flatten();
                                gradA.attach(layer);
                                gFlat.attach(layer);
                                NDArray seed = y.flatten().dot(gFlat).add(probes.activation().flatten().dot(gradA.flatten()));
                                JniUtils.backward((PtNDArray) seed, (PtNDArray) seed.onesLike(), !last, false);
                                mlp[i][l] = probes.mlpTaylor(gradA);
                                heads[i][l] = probes.headTaylor();
                                if (i == 0 && stats != null) { // as the store path: the first gradient criterion's
                                    // ∂L/∂ of down_proj's output is g itself (the layer's output is h_mid + it)
                                    stats.addSensitivity(l, probes.attnBlockGradient(), g[i]);
                                }
                                g[i].close();
                                if (l > 0) { // ∂L/∂h_l, the seed of layer l − 1; after the last criterion x's own
                                    // gradient is not zeroed, so it is passed down as it is
                                    g[i] = last ? x.getGradient() : x.getGradient().duplicate();
                                    g[i].attach(batch);
                                }
                                if (!last) {
                                    JniUtils.zeroGrad((PtNDArray) x);
                                    probes.zeroGradients();
                                }
                            }
                        }
                        afterLayer.accept(l, batch);
                    }
                }
            }
            for (int i = 0; i < n; i++) {
                Criterion c = gradientCriteria.get(i);
                out.put(c, new Partial(c, windows.length, tokens, mlp[i], heads[i]));
            }
        }
        return out;
    }

    /** The first pass's tap: sums Σ A² and Σ O² (activation criterion) and the Gram statistics as each layer runs. */
    private static final class FirstPassTap implements ActivationTap {
        private final boolean activation;
        private final GramAccumulator stats;
        final double[][] mlp;
        final double[][] heads;

        FirstPassTap(int layers, boolean activation, GramAccumulator stats) {
            this.activation = activation;
            this.stats = stats;
            this.mlp = new double[layers][];
            this.heads = new double[layers][];
        }

        @Override
        public NDArray mlpActivation(int layer, NDArray a) {
            if (activation) {
                mlp[layer] = TokenArrays.doubles(a.square().sum(new int[] {0, 1}));
            }
            if (stats != null) {
                stats.addMlp(layer, a);
            }
            return a;
        }

        @Override
        public NDArray attentionOutput(int layer, NDArray o) {
            if (activation) {
                heads[layer] = TokenArrays.doubles(o.square().sum(new int[] {0, 2, 3}));
            }
            if (stats != null) {
                stats.addAttention(layer, o);
            }
            return o;
        }
    }

    /**
     * A zero probe on one layer's O, whose gradient is ∂L/∂O, as in the store path's probes. A needs none: the seed
     * gives ∂L/∂A = g·W_down directly.
     */
    private static final class LayerProbes implements ActivationTap {
        private final int layer;
        private final NDManager manager;
        private NDArray a;
        private NDArray o;
        private NDArray oProbe;
        /** with statistics: a zero probe on o_proj's output, whose gradient is ∂L/∂h_mid */
        private final boolean attnBlock;
        private NDArray attnBlockProbe;

        LayerProbes(int layer, NDManager manager, boolean attnBlock) {
            this.layer = layer;
            this.manager = manager;
            this.attnBlock = attnBlock;
        }

        @Override
        public NDArray attentionBlockOutput(int l, NDArray y) {
            check(l);
            if (!attnBlock) {
                return y;
            }
            attnBlockProbe = probe(y);
            return y.add(attnBlockProbe);
        }

        NDArray attnBlockGradient() {
            return attnBlockProbe.getGradient();
        }

        @Override
        public NDArray mlpActivation(int l, NDArray activation) {
            check(l);
            a = activation;
            return activation;
        }

        /** A, the input of down_proj, in the graph. */
        NDArray activation() {
            return a;
        }

        @Override
        public NDArray attentionOutput(int l, NDArray output) {
            check(l);
            o = output.stopGradient();
            oProbe = probe(output);
            return output.add(oProbe);
        }

        private void check(int l) {
            if (l != layer) {
                throw new IllegalStateException("probes of layer " + layer + " saw layer " + l);
            }
        }

        private NDArray probe(NDArray like) {
            return ZeroProbe.like(manager, like);
        }

        /** Σ over tokens of |A·∂L/∂A| per neuron. */
        double[] mlpTaylor(NDArray gradA) {
            return TaylorSums.perNeuron(a.stopGradient(), gradA);
        }

        /** Σ over tokens and each head's dimensions of |O·∂L/∂O|. */
        double[] headTaylor() {
            return TaylorSums.perHead(o, oProbe.getGradient());
        }

        void zeroGradients() {
            JniUtils.zeroGrad((PtNDArray) oProbe);
            if (attnBlockProbe != null) {
                JniUtils.zeroGrad((PtNDArray) attnBlockProbe);
            }
        }
    }
}
