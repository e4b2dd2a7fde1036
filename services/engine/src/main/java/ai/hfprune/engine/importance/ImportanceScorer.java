package ai.hfprune.engine.importance;

import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.nn.LlamaModel;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Turns one batch of calibration windows into a {@link Partial} per criterion, with one forward pass shared by
 * all criteria and one backward pass per gradient criterion ({@link LayeredScoring}).
 *
 * <p>Gradients are taken with respect to activations only: no weight requires a gradient, so no weight gradient is
 * ever allocated. How the backward pass gets each layer's activations is the {@link ScoringMemory}: stored from the
 * forward pass, recomputed from each layer's input, or, with {@link ScoringMemory#AUTO} (the default), whichever of the
 * two fits, per batch ({@link StoreMemoryEstimate}).
 */
public final class ImportanceScorer {

    private final LlamaModel model;
    private final ScoringMemory memory;
    private final ScoringPrecision precision;
    private final LayeredScoring layered;
    private final Supplier<OptionalLong> available;

    /** A scorer that stores the pass where it fits and recomputes it where not ({@link ScoringMemory#AUTO}). */
    public ImportanceScorer(LlamaModel model) {
        this(model, ScoringMemory.AUTO);
    }

    public ImportanceScorer(LlamaModel model, ScoringMemory memory) {
        this(model, memory, ScoringPrecision.MODEL);
    }

    public ImportanceScorer(LlamaModel model, ScoringMemory memory, ScoringPrecision precision) {
        this(model, memory, ChunkedHead.defaultChunkElements(model.config().vocabSize()),
                StoreMemoryEstimate::availableBytes, precision);
    }

    ImportanceScorer(LlamaModel model, ScoringMemory memory, long headChunkElements) {
        this(model, memory, headChunkElements, StoreMemoryEstimate::availableBytes);
    }

    ImportanceScorer(LlamaModel model, ScoringMemory memory, long headChunkElements, Supplier<OptionalLong> available) {
        this(model, memory, headChunkElements, available, ScoringPrecision.MODEL);
    }

    /**
     * @param headChunkElements logits per chunk of the LM head (tests make chunks of a few positions)
     * @param available         the memory available now, for {@link ScoringMemory#AUTO} (tests give their own)
     */
    ImportanceScorer(LlamaModel model, ScoringMemory memory, long headChunkElements, Supplier<OptionalLong> available,
                     ScoringPrecision precision) {
        this.model = model;
        this.memory = memory;
        this.precision = precision;
        this.layered = new LayeredScoring(model, headChunkElements, precision);
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
        out.putAll(layered.score(windows, gradientCriteria, needsActivations, stats, modeFor(windows.length, windows[0].length)));
        return out;
    }
}
