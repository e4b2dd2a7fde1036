package ai.hfprune.engine.compensate;

import ai.hfprune.engine.HfpruneException;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** What is done after the cut to make up for it, without training: nothing, or a least-squares refit. */
public enum Compensation {
    /** The kept weights stay as they are (the masked dense model). */
    NONE,
    /** The kept columns of down_proj and o_proj are refit by least squares on the calibration activations ({@link Refit}). */
    LSTSQ;

    /** The damping λ of the refit, relative to the mean of the kept Gram diagonal; chosen by the fidelity study (README). */
    public static final double DEFAULT_DAMPING = 0.001;

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
