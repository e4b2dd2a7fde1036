package ai.hfprune.engine.nn;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.io.MapTensorSource;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeLayouts;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.engine.testing.ReferenceForward;
import ai.hfprune.engine.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The DJL forward pass against an independent float64 Java implementation, on real and tiny random models. */
class LlamaModelTest {

    @Test
    void stories260KMatchesReferenceForward() {
        compareWithReference(Assets.stories260K(), 2e-4);
    }

    @Test
    void babyllamaMatchesReferenceForward() {
        compareWithReference(Assets.babyllama(), 2e-4);
    }

    @ParameterizedTest
    @CsvSource({
        "LlamaForCausalLM, F32, 0",
        "MistralForCausalLM, F16, 0",
        "Qwen2ForCausalLM, F32, 0",
        "Qwen3ForCausalLM, F32, 0",
        "Qwen3ForCausalLM, BF16, 4096",  // sharded BF16: upcast in Java, several files
        "Qwen2ForCausalLM, BF16, 4096"})
    void huggingFaceCheckpointsMatchReferenceForward(String architecture, String dtype, long shardBytes, @TempDir Path dir) {
        TinyCheckpoints.writeTinyRandom(dir, architecture, 11, dtype, shardBytes == 0 ? Long.MAX_VALUE : shardBytes);
        compareWithReference(dir, 1e-4);
    }

    /** GGUF's interleaved Q/K with adjacent-pair RoPE computes what the un-permuted Hugging Face layout computes. */
    @Test
    void interleavedAndHalfRopeLayoutsAgree() {
        try (Checkpoint gguf = Checkpoint.open(Assets.stories260K())) {
            ModelConfig c = gguf.config();
            assertEquals(RopeStyle.INTERLEAVED, c.ropeStyle());
            MapTensorSource half = new MapTensorSource();
            for (String name : gguf.weights().names()) {
                long[] shape = gguf.weights().shape(name);
                float[] data = gguf.weights().readFloats(name);
                if (name.endsWith("q_proj.weight") || name.endsWith("k_proj.weight")) {
                    data = RopeLayouts.interleavedToHalf(data, (int) shape[0], (int) shape[1], c.headDim());
                    assertArrayEquals(gguf.weights().readFloats(name),
                            RopeLayouts.halfToInterleaved(data, (int) shape[0], (int) shape[1], c.headDim()));
                }
                half.put(name, shape, data);
            }
            ModelConfig halfConfig = new ModelConfig(c.architecture(), c.vocabSize(), c.hiddenSize(), c.intermediateSize(),
                    c.numHiddenLayers(), c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.rmsNormEps(), c.ropeTheta(),
                    c.maxPositionEmbeddings(), c.tieWordEmbeddings(), c.attentionBias(), c.qkNorm(), RopeStyle.HALF,
                    c.bosTokenId(), c.eosTokenId());
            int[] tokens = randomTokens(c.vocabSize(), 24);
            float[] expected = djlLogits(c, gguf.weights(), tokens);
            float[] actual = djlLogits(halfConfig, half, tokens);
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i], actual[i], 1e-4, "logit " + i);
            }
        }
    }

    private static void compareWithReference(Path model, double tolerance) {
        try (Checkpoint checkpoint = Checkpoint.open(model)) {
            ModelConfig c = checkpoint.config();
            int[] tokens = randomTokens(c.vocabSize(), 12);
            float[] djl = djlLogits(c, checkpoint.weights(), tokens);
            double[][] reference = new ReferenceForward(c, checkpoint.weights()).logits(tokens);
            double maxDiff = 0;
            double maxAbs = 0;
            for (int t = 0; t < tokens.length; t++) {
                for (int v = 0; v < c.vocabSize(); v++) {
                    maxDiff = Math.max(maxDiff, Math.abs(reference[t][v] - djl[t * c.vocabSize() + v]));
                    maxAbs = Math.max(maxAbs, Math.abs(reference[t][v]));
                }
            }
            assertTrue(maxAbs > 0.01, "logits are all near zero: the comparison would prove nothing");
            assertTrue(maxDiff <= tolerance * Math.max(1, maxAbs), "max |logit difference| " + maxDiff + " (max |logit| " + maxAbs + ")");
        }
    }

    private static float[] djlLogits(ModelConfig c, TensorSource weights, int[] tokens) {
        try (LlamaModel model = LlamaModel.load(c, weights, Device.cpu(), DataType.FLOAT32);
             NDManager batch = model.manager().newSubManager()) {
            long[] ids = java.util.Arrays.stream(tokens).asLongStream().toArray();
            NDArray logits = model.forward(batch.create(ids, new Shape(1, ids.length)), ActivationTap.NONE);
            return logits.toFloatArray();
        }
    }

    private static int[] randomTokens(int vocab, int n) {
        SplittableRandom r = new SplittableRandom(5);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = r.nextInt(vocab);
        }
        return t;
    }
}
