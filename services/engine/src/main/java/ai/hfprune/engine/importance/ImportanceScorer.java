package ai.hfprune.engine.importance;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.GradientLock;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.nn.TokenArrays;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Turns one batch of calibration windows into a {@link Partial} per criterion, with one forward pass shared by
 * all criteria and one backward pass per gradient criterion.
 *
 * <p>Gradients are taken with respect to zero "probe" tensors added to A (the input of down_proj) and to O
 * (each head's attention output): ∂L/∂probe = ∂L/∂A. No weight requires a gradient, so no weight gradient is
 * ever allocated. How the backward pass gets its activations is the {@link ScoringMemory}: this class holds the
 * {@link ScoringMemory#STORE} path (autograd keeps the whole pass), {@link RecomputedScoring} the other one, and
 * {@link ScoringMemory#AUTO} (the default) picks one per batch ({@link StoreMemoryEstimate}).
 */
public final class ImportanceScorer {

    private final LlamaModel model;
    private final ScoringMemory memory;
    private final RecomputedScoring recomputed;
    private final Supplier<OptionalLong> available;

    /** A scorer that stores the pass where it fits and recomputes it where not ({@link ScoringMemory#AUTO}). */
    public ImportanceScorer(LlamaModel model) {
        this(model, ScoringMemory.AUTO);
    }

    public ImportanceScorer(LlamaModel model, ScoringMemory memory) {
        this(model, memory, ChunkedHead.DEFAULT_CHUNK_ELEMENTS);
    }

    ImportanceScorer(LlamaModel model, ScoringMemory memory, long headChunkElements) {
        this(model, memory, headChunkElements, StoreMemoryEstimate::availableBytes);
    }

    /**
     * @param headChunkElements logits per chunk of the recompute path's LM head (tests make chunks of a few positions)
     * @param available         the memory available now, for {@link ScoringMemory#AUTO} (tests give their own)
     */
    ImportanceScorer(LlamaModel model, ScoringMemory memory, long headChunkElements, Supplier<OptionalLong> available) {
        this.model = model;
        this.memory = memory;
        this.recomputed = new RecomputedScoring(model, headChunkElements);
        this.available = available;
    }

    /** The mode a batch of {@code windows} windows of {@code seqLen} tokens is scored in: {@link #memory()}, AUTO resolved. */
    public ScoringMemory modeFor(int windows, int seqLen) {
        if (memory != ScoringMemory.AUTO) {
            return memory;
        }
        return StoreMemoryEstimate.choose(StoreMemoryEstimate.bytes(model, windows, seqLen), available.get());
    }

    public ScoringMemory memory() {
        return memory;
    }

    public LlamaModel model() {
        return model;
    }

    /** An all-zero partial with this model's layer widths. */
    public Partial zero(Criterion criterion) {
        int layers = model.layers().size();
        int[] inter = new int[layers];
        int[] heads = new int[layers];
        for (int l = 0; l < layers; l++) {
            inter[l] = model.layers().get(l).intermediateSize();
            heads[l] = model.layers().get(l).numHeads(model.config().headDim());
        }
        return Partial.zero(criterion, inter, heads);
    }

    /**
     * @param windows token ids, each window of the same length T ≥ 2
     */
    public Map<Criterion, Partial> score(int[][] windows, Set<Criterion> criteria) {
        return score(windows, criteria, null);
    }

    /**
     * As {@link #score(int[][], Set)}, and when {@code stats} is not null also adds the batch's Gram matrices of A and O
     * to it, from the same forward pass (a forward pass is run for them even when no criterion needs data).
     */
    public Map<Criterion, Partial> score(int[][] windows, Set<Criterion> criteria, GramAccumulator stats) {
        Map<Criterion, Partial> out = new EnumMap<>(Criterion.class);
        long tokens = (long) windows.length * windows[0].length;
        List<Criterion> gradientCriteria = new ArrayList<>();
        boolean needsActivations = false;
        for (Criterion c : criteria) {
            if (c.needsGradient()) {
                gradientCriteria.add(c);
            } else if (c.needsData()) {
                needsActivations = true;
            } else {
                Partial z = zero(c); // weight-only criteria: the windows are counted, nothing else
                out.put(c, new Partial(c, windows.length, tokens, z.mlp(), z.heads()));
            }
        }
        if (gradientCriteria.isEmpty() && !needsActivations && stats == null) {
            return out;
        }
        if (modeFor(windows.length, windows[0].length) == ScoringMemory.RECOMPUTE) {
            out.putAll(recomputed.score(windows, gradientCriteria, needsActivations, stats));
            return out;
        }
        try (NDManager batch = model.manager().newSubManager()) {
            NDArray inputIds = TokenArrays.ids(batch, windows);
            if (stats != null) {
                stats.countBatch(windows.length, tokens);
            }
            if (gradientCriteria.isEmpty()) {
                Probes probes = new Probes(batch, false, stats);
                model.forward(inputIds, probes);
                if (needsActivations) {
                    out.put(Criterion.ACTIVATION, probes.squaredActivations(Criterion.ACTIVATION, windows.length, tokens));
                }
                return out;
            }
            synchronized (GradientLock.LOCK) {
                try (GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector()) {
                    Probes probes = new Probes(batch, true, stats);
                    NDArray logits = model.forward(inputIds, probes);
                    if (needsActivations) {
                        out.put(Criterion.ACTIVATION, probes.squaredActivations(Criterion.ACTIVATION, windows.length, tokens));
                    }
                    for (int i = 0; i < gradientCriteria.size(); i++) {
                        Criterion c = gradientCriteria.get(i);
                        boolean retainGraph = i < gradientCriteria.size() - 1;
                        if (c == Criterion.ENTROPY) { // the gradient at the logits written out (Losses.entropyGradient)
                            NDArray weight = batch.create(Losses.weight(c, windows[0].length)).toType(logits.getDataType(), false);
                            NDArray gradient = Losses.entropyGradient(logits, weight)[0];
                            JniUtils.backward((PtNDArray) logits, (PtNDArray) gradient, retainGraph, false);
                            gradient.close();
                        } else {
                            NDArray loss = Losses.of(c, logits, inputIds);
                            JniUtils.backward((PtNDArray) loss, (PtNDArray) loss.onesLike(), retainGraph, false);
                        }
                        out.put(c, probes.taylor(c, windows.length, tokens));
                        if (i == 0 && stats != null) { // the first gradient criterion weighs the refit's errors
                            probes.addSensitivity(stats);
                        }
                        if (retainGraph) { // the next criterion's gradients accumulate from zero; after the last, nothing does
                            probes.zeroGradients();
                        }
                    }
                }
            }
        }
        return out;
    }

    /** The tap that keeps A and O of every layer and, for gradient criteria, adds a zero probe to each. */
    private final class Probes implements ActivationTap {
        private final NDManager batch;
        private final boolean withGradient;
        private final GramAccumulator stats;
        private final NDArray[] a;
        private final NDArray[] o;
        private final NDArray[] aProbe;
        private final NDArray[] oProbe;
        /** with statistics and gradients: zero probes on what each block adds to the residual stream */
        private final NDArray[] attnBlockProbe;
        private final NDArray[] mlpBlockProbe;

        Probes(NDManager batch, boolean withGradient, GramAccumulator stats) {
            this.batch = batch;
            this.withGradient = withGradient;
            this.stats = stats;
            int layers = model.layers().size();
            a = new NDArray[layers];
            o = new NDArray[layers];
            aProbe = new NDArray[layers];
            oProbe = new NDArray[layers];
            attnBlockProbe = new NDArray[layers];
            mlpBlockProbe = new NDArray[layers];
        }

        @Override
        public NDArray attentionBlockOutput(int layer, NDArray y) {
            if (!withGradient || stats == null) {
                return y;
            }
            attnBlockProbe[layer] = newProbe(y);
            return y.add(attnBlockProbe[layer]);
        }

        @Override
        public NDArray mlpBlockOutput(int layer, NDArray y) {
            if (!withGradient || stats == null) {
                return y;
            }
            mlpBlockProbe[layer] = newProbe(y);
            return y.add(mlpBlockProbe[layer]);
        }

        void addSensitivity(GramAccumulator stats) {
            for (int l = 0; l < a.length; l++) {
                stats.addSensitivity(l, attnBlockProbe[l].getGradient(), mlpBlockProbe[l].getGradient());
            }
        }

        @Override
        public NDArray mlpActivation(int layer, NDArray activation) {
            a[layer] = activation.stopGradient();
            if (stats != null) {
                stats.addMlp(layer, a[layer]);
            }
            if (!withGradient) {
                return activation;
            }
            aProbe[layer] = newProbe(activation);
            return activation.add(aProbe[layer]);
        }

        @Override
        public NDArray attentionOutput(int layer, NDArray output) {
            o[layer] = output.stopGradient();
            if (stats != null) {
                stats.addAttention(layer, o[layer]);
            }
            if (!withGradient) {
                return output;
            }
            oProbe[layer] = newProbe(output);
            return output.add(oProbe[layer]);
        }

        private NDArray newProbe(NDArray like) {
            return ZeroProbe.like(batch, like);
        }

        /** Σ over tokens of |A·∂L/∂A| per neuron, and of |O·∂L/∂O| summed over each head's dimensions. */
        Partial taylor(Criterion c, long windows, long tokens) {
            double[][] mlp = new double[a.length][];
            double[][] heads = new double[o.length][];
            for (int l = 0; l < a.length; l++) {
                mlp[l] = TaylorSums.perNeuron(a[l], aProbe[l].getGradient());
                heads[l] = TaylorSums.perHead(o[l], oProbe[l].getGradient());
            }
            return new Partial(c, windows, tokens, mlp, heads);
        }

        Partial squaredActivations(Criterion c, long windows, long tokens) {
            double[][] mlp = new double[a.length][];
            double[][] heads = new double[o.length][];
            for (int l = 0; l < a.length; l++) {
                mlp[l] = toDoubles(a[l].square().sum(new int[] {0, 1}));
                heads[l] = toDoubles(o[l].square().sum(new int[] {0, 2, 3}));
            }
            return new Partial(c, windows, tokens, mlp, heads);
        }

        void zeroGradients() {
            for (int l = 0; l < a.length; l++) {
                JniUtils.zeroGrad((PtNDArray) aProbe[l]);
                JniUtils.zeroGrad((PtNDArray) oProbe[l]);
                if (attnBlockProbe[l] != null) {
                    JniUtils.zeroGrad((PtNDArray) attnBlockProbe[l]);
                    JniUtils.zeroGrad((PtNDArray) mlpBlockProbe[l]);
                }
            }
        }

        private double[] toDoubles(NDArray x) {
            return x.toType(DataType.FLOAT64, false).toDoubleArray();
        }
    }
}
