package ai.hfprune.engine.importance;

import ai.hfprune.engine.HfpruneException;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The importance criteria. Each is an additive partial sum over calibration tokens plus a finalize step
 * (see {@link ImportanceScorer} and {@link Finalizer}); the definitions are pinned by tests.
 */
public enum Criterion {
    /** HFPrune: Σ|A·∂L/∂A| with L the mean entropy of the model's own next-token distribution per window. */
    ENTROPY(true, true),
    /** Σ|A·∂L/∂A| with L the mean next-token cross-entropy per window. */
    CE(true, true),
    /** Wanda-style structured: ‖down_proj[:, i]‖₂ · sqrt(Σ A²). */
    ACTIVATION(false, true),
    /** L2 norm of the neuron's weights (gate row, up row, down column). */
    MAGNITUDE(false, false),
    /** Seeded uniform noise: the baseline any criterion must beat. */
    RANDOM(false, false);

    private final boolean needsGradient;
    private final boolean needsData;

    Criterion(boolean needsGradient, boolean needsData) {
        this.needsGradient = needsGradient;
        this.needsData = needsData;
    }

    public boolean needsGradient() {
        return needsGradient;
    }

    /** False where the score depends on the weights alone (calibration batches add nothing). */
    public boolean needsData() {
        return needsData;
    }

    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static Criterion parse(String s) {
        for (Criterion c : values()) {
            if (c.id().equalsIgnoreCase(s.trim())) {
                return c;
            }
        }
        throw new HfpruneException("unknown criterion '" + s + "' (choose one of "
                + Arrays.stream(values()).map(Criterion::id).collect(Collectors.joining(", ")) + ")");
    }
}
