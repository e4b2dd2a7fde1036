package ai.hfprune.engine.compensate;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.prune.PrunedModel;
import ai.hfprune.engine.prune.Pruner;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * What is done after the cut to make up for it, without training: nothing, a least-squares refit, or the refit with
 * the cut's members chosen by what the refit can make up for.
 */
public enum Compensation {
    /** The kept weights stay as they are (the masked dense model). */
    NONE,
    /** The kept columns of down_proj and o_proj are refit by least squares on the calibration activations ({@link Refit}). */
    LSTSQ,
    /**
     * Each layer keeps as many units as the criterion's plan gives it, but which ones is chosen by the error the refit
     * leaves ({@link ObsSelection}, greedy Optimal Brain Surgeon on the Gram statistics); then the refit.
     */
    OBS;

    /** The damping λ of the refit, relative to the mean of the kept Gram diagonal; chosen by the fidelity study (README). */
    public static final double DEFAULT_DAMPING = 0.001;

    /** Whether this compensation needs the calibration Gram statistics (scorers compute them iff so). */
    public boolean usesStats() {
        return this != NONE;
    }

    /**
     * The compensated model of a cut.
     *
     * @param dense the dense weights {@code cut} was sliced from (Hugging Face names)
     * @param stats the calibration statistics; unused (may be null) for {@link #NONE}
     */
    public PrunedModel apply(ModelConfig config, TensorSource dense, PrunedModel cut, GramStats stats, double damping) {
        return switch (this) {
            case NONE -> cut;
            case LSTSQ -> Refit.apply(dense, cut, stats, damping);
            case OBS -> Refit.apply(dense, Pruner.apply(config, dense,
                    ObsSelection.select(dense, cut.plan(), stats, damping, config.headDim())), stats, damping);
        };
    }

    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static Compensation parse(String s) {
        for (Compensation c : values()) {
            if (c.id().equalsIgnoreCase(s.trim())) {
                return c;
            }
        }
        throw new HfpruneException("unknown compensation '" + s + "' (choose one of "
                + Arrays.stream(values()).map(Compensation::id).collect(Collectors.joining(", ")) + ")");
    }

    public static double checkDamping(double lambda) {
        if (!(lambda >= 0) || Double.isInfinite(lambda)) {
            throw new HfpruneException("--damping must be a finite number ≥ 0, got " + lambda);
        }
        return lambda;
    }
}
