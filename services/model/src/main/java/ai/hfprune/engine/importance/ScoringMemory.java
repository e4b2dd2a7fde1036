package ai.hfprune.engine.importance;

import ai.hfprune.engine.HfpruneException;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** How the scoring pass gets the activations its backward pass needs. All give the same scores. */
public enum ScoringMemory {
    /**
     * {@link #STORE} for a batch whose stored activations are estimated to fit well within the memory available when it
     * starts, else {@link #RECOMPUTE}: the speed of storing where it is safe, the bounded memory of recomputing where it
     * is needed (engine: {@code StoreMemoryEstimate}).
     */
    AUTO,
    /**
     * Keeps only each decoder layer's input from the forward pass, then recomputes one layer at a time
     * during the backward pass, and computes the LM head and the loss over chunks of positions: memory grows with
     * neither depth nor vocabulary, for about one more forward pass of the layers.
     */
    RECOMPUTE,
    /**
     * Keeps every layer's pass from the forward pass for its backward pass: faster, memory grows with depth (the LM
     * head is computed over chunks of positions in both modes).
     */
    STORE;

    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static ScoringMemory parse(String s) {
        for (ScoringMemory m : values()) {
            if (m.id().equalsIgnoreCase(s.trim())) {
                return m;
            }
        }
        throw new HfpruneException("unknown scoring memory mode '" + s + "' (choose one of "
                + Arrays.stream(values()).map(ScoringMemory::id).collect(Collectors.joining(", ")) + ")");
    }
}
