package ai.hfprune.engine.importance;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.nn.DecoderLayer;
import ai.hfprune.engine.nn.GradientLock;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.nn.TokenArrays;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * The scoring pass, layer by layer, in either {@link ScoringMemory}:
 *
 * <ol>
 *   <li>a forward pass, layer by layer ({@link LayerPass}): with {@link ScoringMemory#STORE} each layer's pass is
 *       kept; with {@link ScoringMemory#RECOMPUTE} only each layer's input h_l, so that memory grows with neither
 *       depth nor vocabulary. Either sums what the activation criterion and the Gram statistics need as each layer
 *       runs;</li>
 *   <li>the head's loss differentiated over chunks of positions ({@link ChunkedHead}), giving ∂L/∂h_L;</li>
 *   <li>for l = L−1 … 0, layer l's backward pass with ∂L/∂h_{l+1} ({@link LayerPass#backward}), after recomputing the
 *       layer's pass from h_l in the recompute mode: the Taylor sums of its A and O, and ∂L/∂h_l for layer l − 1.</li>
 * </ol>
 * Each layer's pass lives in a manager of its own, closed after its backward pass: in the recompute mode only one
 * layer's pass (its T × T attention probabilities among it) exists at a time. Several gradient criteria share the
 * forward pass and each layer's pass. Only step 2 takes the JVM-wide gradient lock, so scorers sharing a JVM overlap in
 * the rest.
 */
final class LayeredScoring {

    private final LlamaModel model;
    private final long headChunkElements;

    /** For tests: sees the batch's manager after each layer's backward pass (layer index, manager). */
    private final BiConsumer<Integer, NDManager> afterLayer;

    /** The layers' weights the passes run with: the model's own, or bfloat16 copies ({@link Bf16Layers}). */
    private final ScoringPrecision precision;

    LayeredScoring(LlamaModel model, long headChunkElements) {
        this(model, headChunkElements, ScoringPrecision.MODEL);
    }

    LayeredScoring(LlamaModel model, long headChunkElements, ScoringPrecision precision) {
        this(model, headChunkElements, precision, (l, batch) -> { });
    }

    LayeredScoring(LlamaModel model, long headChunkElements, BiConsumer<Integer, NDManager> afterLayer) {
        this(model, headChunkElements, ScoringPrecision.MODEL, afterLayer);
    }

    private LayeredScoring(LlamaModel model, long headChunkElements, ScoringPrecision precision,
                           BiConsumer<Integer, NDManager> afterLayer) {
        this.model = model;
        this.headChunkElements = headChunkElements;
        this.precision = precision;
        this.afterLayer = afterLayer;
    }

    private List<DecoderLayer> weights() {
        return precision == ScoringPrecision.BF16 ? Bf16Layers.of(model) : model.layers();
    }

    /**
     * As {@link ImportanceScorer#score(int[][], java.util.Set, GramAccumulator)} for the criteria that need data.
     *
     * @param memory STORE or RECOMPUTE
     */
    Map<Criterion, Partial> score(int[][] windows, List<Criterion> gradientCriteria, boolean activation,
                                  GramAccumulator stats, ScoringMemory memory) {
        int layers = model.layers().size();
        long tokens = (long) windows.length * windows[0].length;
        Map<Criterion, Partial> out = new EnumMap<>(Criterion.class);
        boolean store = memory == ScoringMemory.STORE && !gradientCriteria.isEmpty();
        try (NDManager batch = model.manager().newSubManager()) {
            NDArray ids = TokenArrays.ids(batch, windows);
            if (stats != null) {
                stats.countBatch(windows.length, tokens);
            }
            FirstPassSums first = new FirstPassSums(layers, activation, stats);
            NDArray[] inputs = new NDArray[layers + 1]; // inputs[l]: the input of layer l; inputs[layers]: the last output
            inputs[0] = inType(model.embed(ids), "to_bfloat16");
            LayerPass[] passes = new LayerPass[layers];
            for (int l = 0; l < layers; l++) {
                NDManager layer = batch.newSubManager();
                LayerPass pass = new LayerPass(model, weights().get(l), l, inputs[l], layer);
                if (activation || stats != null) {
                    try (NDArray a = forJava(pass.activation()); NDArray o = forJava(pass.attentionOutput())) {
                        first.mlpActivation(l, a);
                        first.attentionOutput(l, o);
                    }
                }
                inputs[l + 1] = pass.output();
                inputs[l + 1].attach(batch);
                if (store) {
                    passes[l] = pass;
                } else { // only the layer's input stays: the backward pass recomputes the rest from it
                    inputs[l].attach(batch);
                    layer.close();
                }
            }
            if (activation) {
                out.put(Criterion.ACTIVATION, new Partial(Criterion.ACTIVATION, windows.length, tokens, first.mlp, first.heads));
            }
            if (gradientCriteria.isEmpty()) {
                return out;
            }
            backward(windows, gradientCriteria, stats, batch, ids, inputs, passes, out);
        }
        return out;
    }

    /**
     * An array of the layers' for what reads it in Java (the activation criterion's sums, the Gram statistics), which
     * DJL 0.36 cannot do for bfloat16 ({@link ScoringPrecision}): with BF16 a float32 copy, else a second handle on
     * {@code x}; the caller closes it ({@code x} stays), in {@code x}'s manager.
     */
    private NDArray forJava(NDArray x) {
        return LayerKernels.get().run(precision == ScoringPrecision.BF16 ? "to_float" : "same", x.getManager(), x)[0];
    }

    /**
     * With {@link ScoringPrecision#BF16}, the hidden state {@code x} converted by the kernel {@code conversion} (into
     * the layers' type, or back into the head's), {@code x} closed; else {@code x} itself.
     */
    private NDArray inType(NDArray x, String conversion) {
        if (precision != ScoringPrecision.BF16) {
            return x;
        }
        try (x) {
            return LayerKernels.get().run(conversion, x.getManager(), x)[0];
        }
    }

    /**
     * The head's backward pass, the one part autograd differentiates: under the JVM-wide gradient lock (DJL allows
     * one GradientCollector at a time), which the layers' passes, written out, do not need.
     */
    private NDArray[] headGradients(NDArray hidden, NDArray ids, List<Criterion> criteria) {
        synchronized (GradientLock.LOCK) {
            try (GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector()) {
                return ChunkedHead.backward(model, hidden, ids, criteria, headChunkElements).gradients();
            }
        }
    }

    /** Steps 2 and 3: the head's backward pass, then each layer's, from the last; passes[l] is null where recomputed. */
    private void backward(int[][] windows, List<Criterion> criteria, GramAccumulator stats, NDManager batch, NDArray ids,
                          NDArray[] inputs, LayerPass[] passes, Map<Criterion, Partial> out) {
        int layers = model.layers().size();
        int n = criteria.size();
        double[][][] mlp = new double[n][layers][];
        double[][][] heads = new double[n][layers][];
        NDArray last = inType(inputs[layers], "to_float");
        NDArray[] g = headGradients(last, ids, criteria);
        last.close();
        for (int l = layers - 1; l >= 0; l--) {
            try (NDManager layer = passes[l] != null ? passes[l].manager() : batch.newSubManager()) {
                LayerPass pass = passes[l] != null ? passes[l] : new LayerPass(model, weights().get(l), l, inputs[l], layer);
                for (int i = 0; i < n; i++) {
                    LayerPass.Gradients r = pass.backward(g[i]);
                    mlp[i][l] = r.mlpTaylor();
                    heads[i][l] = r.headTaylor();
                    if (i == 0 && stats != null) { // the first gradient criterion weighs the refit's errors: ∂L/∂ of
                        // o_proj's output is ∂L/∂h_mid, that of down_proj's output ∂L/∂ of the layer's output, g
                        try (NDArray viaO = forJava(r.attentionBlockGradient()); NDArray viaDown = forJava(g[i])) {
                            stats.addSensitivity(l, viaO, viaDown);
                        }
                    }
                    g[i].close();
                    g[i] = r.inputGradient(); // ∂L/∂h_l, the seed of layer l − 1 (null for layer 0)
                    if (g[i] != null) {
                        g[i].attach(batch);
                    }
                }
            }
            afterLayer.accept(l, batch);
        }
        long tokens = (long) windows.length * windows[0].length;
        for (int i = 0; i < n; i++) {
            Criterion c = criteria.get(i);
            out.put(c, new Partial(c, windows.length, tokens, mlp[i], heads[i]));
        }
    }

    /** The first pass's sums as each layer runs: Σ A² and Σ O² (activation criterion) and the Gram statistics. */
    private static final class FirstPassSums {
        private final boolean activation;
        private final GramAccumulator stats;
        final double[][] mlp;
        final double[][] heads;

        FirstPassSums(int layers, boolean activation, GramAccumulator stats) {
            this.activation = activation;
            this.stats = stats;
            this.mlp = new double[layers][];
            this.heads = new double[layers][];
        }

        void mlpActivation(int layer, NDArray a) {
            if (activation) {
                mlp[layer] = sumOfSquares(a, new int[] {0, 1});
            }
            if (stats != null) {
                stats.addMlp(layer, a);
            }
        }

        void attentionOutput(int layer, NDArray o) {
            if (activation) {
                heads[layer] = sumOfSquares(o, new int[] {0, 2, 3});
            }
            if (stats != null) {
                stats.addAttention(layer, o);
            }
        }

        /** Closes the squares at once: in the store mode the layer's manager stays open until its backward pass. */
        private static double[] sumOfSquares(NDArray x, int[] axes) {
            try (NDArray squares = x.square(); NDArray sum = squares.sum(axes)) {
                return TokenArrays.doubles(sum);
            }
        }
    }
}
