package ai.hfprune.engine.nn;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.io.SafetensorsSource.Dtype;
import ai.hfprune.engine.io.SafetensorsWriter;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.HfConfigs;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeScaling;
import ai.hfprune.engine.model.SlidingWindow;
import ai.hfprune.engine.testing.ReferenceForward;
import ai.hfprune.engine.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.IntPredicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tiny random Hugging Face checkpoints whose config.json sets rope_scaling or a sliding window, written and read back
 * through config.json: hfprune's logits (the full forward pass, and generation with the KV cache) equal those of the
 * independent float64 {@link ReferenceForward} given the frequencies and the window computed here, and differ from
 * the plain model's, so neither test passes by ignoring the setting.
 */
class PositionSettingsForwardTest {

    private static final int LENGTH = 40;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama3", "linear"})
    void scaledRopeMatchesReferenceAndDiffersFromPlainRope(String type, @TempDir Path dir) {
        // original_max_position_embeddings 64 makes llama3 bite at 40 tokens: with head_dim 8 and θ = 10⁴ the pairs'
        // wavelengths are 6.3 (kept, < 64/4), 62.8 (interpolated) and 628, 6283 (divided by 8)
        RopeScaling scaling = type.equals("llama3") ? new RopeScaling.Llama3(8, 1, 4, 64) : new RopeScaling.Linear(4);
        ModelConfig c = write(dir, "LlamaForCausalLM", scaling, SlidingWindow.NONE);
        double[] frequencies = type.equals("llama3") ? llama3Frequencies(c.ropeTheta(), c.headDim(), 8, 1, 4, 64)
                : linearFrequencies(c.ropeTheta(), c.headDim(), 4);
        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            assertEquals(c, checkpoint.config(), "config.json carries the scaling");
            int[] tokens = tokens(c.vocabSize(), LENGTH);
            double[][] scaled = new ReferenceForward(c, checkpoint.weights()).withInverseFrequencies(frequencies).logits(tokens);
            double[][] plain = new ReferenceForward(c, checkpoint.weights()).logits(tokens);
            assertHfpruneComputes(checkpoint, tokens, scaled, plain);
        }
    }

    @Test
    void mistralSlidingWindowMatchesMaskedReference(@TempDir Path dir) {
        ModelConfig c = write(dir, "MistralForCausalLM", RopeScaling.NONE, SlidingWindow.fromLayer(5, 0, 2));
        assertWindowed(dir, c, 5, l -> true);
    }

    /** use_sliding_window with max_window_layers 1: layer 0 attends to everything, layer 1 to the last 7 positions. */
    @Test
    void qwen2SlidingWindowOnlyFromMaxWindowLayers(@TempDir Path dir) {
        ModelConfig c = write(dir, "Qwen2ForCausalLM", new RopeScaling.Llama3(8, 1, 4, 64), SlidingWindow.fromLayer(7, 1, 2));
        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            int[] tokens = tokens(c.vocabSize(), LENGTH);
            double[][] everyLayer = new ReferenceForward(c, checkpoint.weights())
                    .withInverseFrequencies(llama3Frequencies(c.ropeTheta(), c.headDim(), 8, 1, 4, 64))
                    .withWindow(7, l -> true).logits(tokens);
            double[][] expected = reference(c, checkpoint, tokens, 7, l -> l >= 1);
            assertTrue(maxDifference(expected, everyLayer) > 1e-2, "layer 0 must not use the window");
        }
        assertWindowed(dir, c, 7, l -> l >= 1);
    }

    private static void assertWindowed(Path dir, ModelConfig c, int window, IntPredicate layers) {
        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            assertEquals(c, checkpoint.config(), "config.json carries the window");
            int[] tokens = tokens(c.vocabSize(), LENGTH);
            double[][] windowed = reference(c, checkpoint, tokens, window, layers);
            double[][] full = reference(c, checkpoint, tokens, 0, l -> false);
            assertHfpruneComputes(checkpoint, tokens, windowed, full);
        }
    }

    /** The reference with the test's own frequencies for the config's scaling (none or llama3(8, 1, 4, 64) here). */
    private static double[][] reference(ModelConfig c, Checkpoint checkpoint, int[] tokens, int window, IntPredicate layers) {
        ReferenceForward r = new ReferenceForward(c, checkpoint.weights()).withWindow(window, layers);
        if (c.ropeScaling() instanceof RopeScaling.Llama3) {
            r.withInverseFrequencies(llama3Frequencies(c.ropeTheta(), c.headDim(), 8, 1, 4, 64));
        }
        return r.logits(tokens);
    }

    /**
     * The full float32 forward pass equals {@code expected} and differs from {@code without} (the model without the
     * setting); float64 generation with the KV cache (a prompt of 3, then one token at a time: DecodeStep while every
     * key is in the window, the masked path after) gives {@code expected} at every position.
     */
    private static void assertHfpruneComputes(Checkpoint checkpoint, int[] tokens, double[][] expected, double[][] without) {
        ModelConfig c = checkpoint.config();
        double gap = maxDifference(expected, without);
        assertTrue(gap > 1e-2, "the setting changes the logits by only " + gap + ": the test would prove nothing");
        try (LlamaModel model = LlamaModel.load(c, checkpoint.weights(), Device.cpu(), DataType.FLOAT32)) {
            double[][] got = split(logits(model, tokens, null), c.vocabSize());
            double scale = Math.max(1, maxAbs(expected));
            assertTrue(maxDifference(expected, got) <= 1e-4 * scale, "float32 forward differs from the reference by "
                    + maxDifference(expected, got) + " (without the setting: " + gap + ")");
        }
        try (LlamaModel model = LlamaModel.load(c, checkpoint.weights(), Device.cpu(), DataType.FLOAT64);
             KvCache cache = model.newKvCache(tokens.length)) {
            double[][] got = new double[tokens.length][];
            int fed = 0;
            for (int end = 3; end <= tokens.length; end++) {
                double[][] step = split(logits(model, Arrays.copyOfRange(tokens, fed, end), cache), c.vocabSize());
                System.arraycopy(step, 0, got, fed, step.length);
                fed = end;
            }
            assertTrue(maxDifference(expected, got) <= 1e-9, "cached float64 generation differs from the reference by "
                    + maxDifference(expected, got));
        }
    }

    /** Llama 3.1's rule per element, in llama.cpp's divisor form: 1, factor, or 1 / ((1 - s) / factor + s). */
    static double[] llama3Frequencies(double theta, int headDim, double factor, double low, double high, int original) {
        double[] f = new double[headDim / 2];
        for (int i = 0; i < f.length; i++) {
            double plain = Math.exp(-Math.log(theta) * 2.0 * i / headDim);
            double wavelength = 2 * Math.PI / plain;
            double divisor = wavelength < original / high ? 1 : wavelength > original / low ? factor
                    : 1 / ((1 - (original / wavelength - low) / (high - low)) / factor + (original / wavelength - low) / (high - low));
            f[i] = plain / divisor;
        }
        return f;
    }

    /** Linear scaling as position interpolation: the angle at p is the plain one at p / factor. */
    private static double[] linearFrequencies(double theta, int headDim, double factor) {
        double[] f = new double[headDim / 2];
        for (int i = 0; i < f.length; i++) {
            f[i] = Math.exp(-Math.log(theta) * 2.0 * i / headDim) / factor;
        }
        return f;
    }

    /** The tiny config of {@code architecture} with these settings, written as config.json and random safetensors. */
    static ModelConfig write(Path dir, String architecture, RopeScaling scaling, SlidingWindow window) {
        ModelConfig t = TinyCheckpoints.tinyConfig(architecture);
        ModelConfig c = new ModelConfig(t.architecture(), t.vocabSize(), t.hiddenSize(), t.intermediateSize(),
                t.numHiddenLayers(), t.numAttentionHeads(), t.numKeyValueHeads(), t.headDim(), t.rmsNormEps(),
                t.ropeTheta(), t.maxPositionEmbeddings(), t.tieWordEmbeddings(), t.attentionBias(), t.qkNorm(),
                t.ropeStyle(), t.bosTokenId(), t.eosTokenId(), scaling, window);
        HfConfigs.write(c, dir);
        SafetensorsWriter.write(dir, TinyCheckpoints.randomTensors(c, 29), Dtype.F32);
        return c;
    }

    private static double[] logits(LlamaModel model, int[] ids, KvCache cache) {
        try (NDManager m = model.manager().newSubManager()) {
            NDArray input = m.create(Arrays.stream(ids).asLongStream().toArray(), new Shape(1, ids.length));
            NDArray out = cache == null ? model.forward(input, ActivationTap.NONE) : model.forward(input, cache);
            return out.toType(DataType.FLOAT64, false).toDoubleArray();
        }
    }

    private static double[][] split(double[] flat, int vocab) {
        double[][] out = new double[flat.length / vocab][];
        for (int t = 0; t < out.length; t++) {
            out[t] = Arrays.copyOfRange(flat, t * vocab, (t + 1) * vocab);
        }
        return out;
    }

    private static int[] tokens(int vocab, int n) {
        int[] t = new int[n];
        Arrays.setAll(t, i -> (13 * i + 5) % vocab);
        return t;
    }

    private static double maxDifference(double[][] a, double[][] b) {
        double worst = 0;
        for (int t = 0; t < a.length; t++) {
            for (int v = 0; v < a[t].length; v++) {
                worst = Math.max(worst, Math.abs(a[t][v] - b[t][v]));
            }
        }
        return worst;
    }

    private static double maxAbs(double[][] a) {
        double m = 0;
        for (double[] row : a) {
            for (double v : row) {
                m = Math.max(m, Math.abs(v));
            }
        }
        return m;
    }
}
