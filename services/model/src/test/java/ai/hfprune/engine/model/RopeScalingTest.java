package ai.hfprune.engine.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * RoPE scaling's inverse frequencies against independent computations: hand-derived elements of the published
 * Llama-3.1-8B configuration, a per-element wavelength rule written in llama.cpp's divisor form, and linear scaling
 * as position interpolation (the angle at position p is the unscaled angle at p / factor).
 */
class RopeScalingTest {

    /** Llama-3.1-8B's config.json: head_dim 128, rope_theta 500000, factor 8, low 1, high 4, original 8192. */
    private static final RopeScaling LLAMA_31 = new RopeScaling.Llama3(8, 1, 4, 8192);
    private static final double THETA = 500_000;
    private static final int HEAD_DIM = 128;

    @Test
    void llama31HandDerivedElements() {
        double[] f = LLAMA_31.inverseFrequencies(THETA, HEAD_DIM);
        assertEquals(64, f.length);
        // i = 0: θ^0 = 1, wavelength 2π, far below 8192 / 4 = 2048: unchanged
        assertEquals(1.0, f[0], 0);
        // i = 28: θ^(-56/128) = 3.21145e-3, wavelength 1956.5 < 2048: still unchanged
        assertEquals(Math.pow(THETA, -56.0 / 128), f[28], 1e-18);
        // i = 32: θ^(-1/2) = 1.414214e-3, wavelength 2π·707.107 = 4442.88, between 2048 and 8192:
        // smooth = (8192 / 4442.88 - 1) / (4 - 1) = 0.281283, f = 1.414214e-3 · ((1 - 0.281283) / 8 + 0.281283)
        assertEquals(5.248461609929547e-4, f[32], 1e-15);
        // i = 35: θ^(-70/128) = 7.64497e-4, wavelength 8218.7 > 8192: divided by 8
        assertEquals(7.644969883171747e-4 / 8, f[35], 1e-15);
        // i = 63, the lowest: θ^(-126/128) / 8
        assertEquals(Math.pow(THETA, -126.0 / 128) / 8, f[63], 1e-20);
    }

    @Test
    void llama31BandsCountedPerElement() {
        double[] f = LLAMA_31.inverseFrequencies(THETA, HEAD_DIM);
        int kept = 0;
        int divided = 0;
        int between = 0;
        for (int i = 0; i < 64; i++) {
            double plain = 1 / Math.pow(THETA, i / 64.0);
            if (Math.abs(f[i] - plain) <= 1e-14 * plain) {
                kept++;
            } else if (Math.abs(f[i] - plain / 8) <= 1e-14 * plain) {
                divided++;
            } else {
                between++;
                assertEquals(true, f[i] < plain && f[i] > plain / 8, "interpolated frequency " + i + " lies between");
            }
        }
        // wavelength 2π·θ^(i/64) < 2048 for i ≤ 28; > 8192 for i ≥ 35
        assertEquals(29, kept);
        assertEquals(6, between);
        assertEquals(29, divided);
    }

    /**
     * The same scaling written as llama.cpp's convert_hf_to_gguf.py writes rope_freqs: a divisor per frequency, 1
     * above the high-frequency wavelength, factor below the low one, 1 / ((1 - s) / factor + s) between.
     */
    @Test
    void llama3AgreesWithTheDivisorFormForOtherParameters() {
        double factor = 32;
        double low = 1;
        double high = 4;
        int original = 64;
        double theta = 10_000;
        int headDim = 16;
        RopeScaling scaling = new RopeScaling.Llama3(factor, low, high, original);
        double[] got = scaling.inverseFrequencies(theta, headDim);
        float[] divisors = scaling.frequencyDivisors(theta, headDim);
        int[] bands = new int[3];
        for (int i = 0; i < headDim / 2; i++) {
            double plain = Math.exp(-Math.log(theta) * (2.0 * i) / headDim);
            double wavelength = 2 * Math.PI / plain;
            double divisor;
            if (wavelength < original / high) {
                divisor = 1;
                bands[0]++;
            } else if (wavelength > original / low) {
                divisor = factor;
                bands[2]++;
            } else {
                double s = (original / wavelength - low) / (high - low);
                divisor = 1 / ((1 - s) / factor + s);
                bands[1]++;
            }
            assertEquals(plain / divisor, got[i], 1e-12 * plain, "frequency " + i);
            assertEquals(divisor, divisors[i], 1e-6 * divisor, "rope_freqs " + i);
        }
        for (int band : bands) {
            assertEquals(true, band > 0, "each band is exercised: " + java.util.Arrays.toString(bands));
        }
    }

    @Test
    void linearScalingIsPositionInterpolation() {
        RopeScaling linear = new RopeScaling.Linear(4);
        double[] f = linear.inverseFrequencies(10_000, 8);
        for (int i = 0; i < 4; i++) {
            for (int pos : new int[] {1, 7, 100}) {
                double unscaledAngleAtQuarter = (pos / 4.0) * Math.pow(10_000, -2.0 * i / 8);
                assertEquals(unscaledAngleAtQuarter, pos * f[i], 1e-12);
            }
            assertEquals(4, linear.frequencyDivisors(10_000, 8)[i], 1e-6);
        }
    }

    @Test
    void frequencyDivisorsAreAppliedAndChecked() {
        RopeScaling g = RopeScaling.FrequencyDivisors.of(new float[] {1, 2, 4, 8});
        double[] f = g.inverseFrequencies(10_000, 8);
        assertEquals(Math.pow(10_000, -6.0 / 8) / 8, f[3], 1e-15);
        assertThrows(IllegalArgumentException.class, () -> g.inverseFrequencies(10_000, 16), "4 factors for 8 pairs");
        assertThrows(IllegalArgumentException.class, () -> RopeScaling.FrequencyDivisors.of(new float[] {1, 0}));
        assertThrows(IllegalArgumentException.class, () -> new RopeScaling.Llama3(8, 4, 1, 8192), "low >= high");
    }
}
