package ai.hfprune.engine.model;

import java.util.Arrays;
import java.util.List;

/**
 * How a checkpoint rescales RoPE's inverse frequencies θ^(-2i/d) (i = 0 … d/2 - 1) before the angles pos·f_i are
 * taken: config.json's {@code rope_scaling}, or in GGUF the {@code rope.scaling.*} keys and the {@code rope_freqs}
 * tensor. Each kind computes exactly what Hugging Face transformers' {@code modeling_rope_utils.py} (or llama.cpp's
 * {@code ggml_rope_ext} with frequency factors) computes; kinds whose result depends on the sequence being run
 * ({@code dynamic}) or that also scale cos/sin ({@code yarn}, {@code longrope}) are refused by the readers.
 */
public sealed interface RopeScaling {

    /** No scaling: config.json's {@code rope_scaling: null} or {@code rope_type: default}. */
    RopeScaling NONE = new None();

    /** The inverse frequency of each rotated pair, {@code headDim / 2} of them. */
    double[] inverseFrequencies(double ropeTheta, int headDim);

    /** Plain RoPE: f_i = θ^(-2i/d). */
    static double[] unscaled(double ropeTheta, int headDim) {
        double[] f = new double[headDim / 2];
        for (int i = 0; i < f.length; i++) {
            f[i] = Math.pow(ropeTheta, -2.0 * i / headDim);
        }
        return f;
    }

    /**
     * The divisor of each unscaled frequency, f_i(unscaled) / f_i(scaled): what llama.cpp stores as the
     * {@code rope_freqs} tensor and divides each angle by.
     */
    default float[] frequencyDivisors(double ropeTheta, int headDim) {
        double[] plain = unscaled(ropeTheta, headDim);
        double[] scaled = inverseFrequencies(ropeTheta, headDim);
        float[] out = new float[plain.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) (plain[i] / scaled[i]);
        }
        return out;
    }

    record None() implements RopeScaling {
        @Override
        public double[] inverseFrequencies(double ropeTheta, int headDim) {
            return unscaled(ropeTheta, headDim);
        }
    }

    /** transformers' {@code _compute_linear_scaling_rope_parameters}: {@code inv_freq /= factor}. */
    record Linear(double factor) implements RopeScaling {
        public Linear {
            if (!(factor > 0) || Double.isInfinite(factor)) {
                throw new IllegalArgumentException("rope_scaling factor must be a positive number, got " + factor);
            }
        }

        @Override
        public double[] inverseFrequencies(double ropeTheta, int headDim) {
            double[] f = unscaled(ropeTheta, headDim);
            for (int i = 0; i < f.length; i++) {
                f[i] /= factor;
            }
            return f;
        }
    }

    /**
     * Llama 3.1's scaling, as transformers' {@code _compute_llama3_parameters}: with wavelength λ = 2π / f and
     * L = original_max_position_embeddings, a frequency whose λ < L / high_freq_factor is kept, one whose
     * λ > L / low_freq_factor is divided by {@code factor}, and one between is interpolated, (1 - s)·f / factor + s·f
     * with s = (L / λ - low_freq_factor) / (high_freq_factor - low_freq_factor).
     */
    record Llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositionEmbeddings)
            implements RopeScaling {
        public Llama3 {
            if (!(factor > 0) || Double.isInfinite(factor)) {
                throw new IllegalArgumentException("rope_scaling factor must be a positive number, got " + factor);
            }
            if (!(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor) || Double.isInfinite(highFreqFactor)) {
                throw new IllegalArgumentException("rope_scaling needs 0 < low_freq_factor < high_freq_factor, got "
                        + lowFreqFactor + " and " + highFreqFactor);
            }
            if (originalMaxPositionEmbeddings <= 0) {
                throw new IllegalArgumentException("rope_scaling original_max_position_embeddings must be positive, got "
                        + originalMaxPositionEmbeddings);
            }
        }

        @Override
        public double[] inverseFrequencies(double ropeTheta, int headDim) {
            double[] f = unscaled(ropeTheta, headDim);
            double lowFreqWavelen = originalMaxPositionEmbeddings / lowFreqFactor;
            double highFreqWavelen = originalMaxPositionEmbeddings / highFreqFactor;
            for (int i = 0; i < f.length; i++) {
                double wavelen = 2 * Math.PI / f[i];
                if (wavelen > lowFreqWavelen) {
                    f[i] /= factor;
                } else if (wavelen >= highFreqWavelen) { // the band between: neither kept nor fully divided
                    double smooth = (originalMaxPositionEmbeddings / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                    f[i] = (1 - smooth) * f[i] / factor + smooth * f[i];
                }
            }
            return f;
        }
    }

    /**
     * llama.cpp's frequency factors (the GGUF tensor {@code rope_freqs}, one per pair): f_i = θ^(-2i/d) / divisor_i.
     * convert_hf_to_gguf.py writes Llama 3.1's scaling this way; config.json has no form for it.
     */
    record FrequencyDivisors(List<Float> divisors) implements RopeScaling {
        public FrequencyDivisors {
            divisors = List.copyOf(divisors);
            for (float d : divisors) {
                if (!(d > 0) || Float.isInfinite(d)) {
                    throw new IllegalArgumentException("rope_freqs must hold positive numbers, got " + d);
                }
            }
        }

        public static FrequencyDivisors of(float[] divisors) {
            Float[] boxed = new Float[divisors.length];
            Arrays.setAll(boxed, i -> divisors[i]);
            return new FrequencyDivisors(List.of(boxed));
        }

        @Override
        public double[] inverseFrequencies(double ropeTheta, int headDim) {
            if (divisors.size() != headDim / 2) {
                throw new IllegalArgumentException("rope_freqs has " + divisors.size() + " factors for head_dim "
                        + headDim + " (needs " + headDim / 2 + ")");
            }
            double[] f = unscaled(ropeTheta, headDim);
            for (int i = 0; i < f.length; i++) {
                f[i] /= divisors.get(i);
            }
            return f;
        }

        @Override
        public float[] frequencyDivisors(double ropeTheta, int headDim) {
            float[] out = new float[divisors.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = divisors.get(i);
            }
            return out;
        }
    }
}
