package ai.hfprune.engine.nn;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Generation with the KV cache computes what recomputing the whole sequence at every step computes: the same token ids
 * (float32, as generate runs) and, in float64, the same logits at every step; on tiny random models of every
 * architecture and both RoPE layouts. And the position tables hand out slices of one table.
 */
class KvCacheTest {

    @ParameterizedTest(name = "{0}, {1} RoPE, prompt of {2}")
    @CsvSource({
        "LlamaForCausalLM, HALF, 5",
        "LlamaForCausalLM, INTERLEAVED, 1",
        "Qwen2ForCausalLM, HALF, 7",
        "Qwen3ForCausalLM, HALF, 3"})
    void cachedGenerationEqualsRecompute(String architecture, RopeStyle rope, int promptLength, @TempDir Path dir) {
        TinyCheckpoints.writeTinyRandom(dir, architecture, 23, "F32", Long.MAX_VALUE);
        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            ModelConfig c = withRope(checkpoint.config(), rope);
            int[] prompt = new int[promptLength];
            Arrays.setAll(prompt, i -> (7 * i + 3) % c.vocabSize());
            int limit = promptLength + 60;
            try (LlamaModel model = LlamaModel.load(c, checkpoint.weights(), Device.cpu(), DataType.FLOAT32)) {
                int[] cached = GreedyDecoder.generate(model, prompt, limit, -1, GreedyDecoder.Mode.CACHED, t -> { });
                int[] recomputed = GreedyDecoder.generate(model, prompt, limit, -1, GreedyDecoder.Mode.RECOMPUTE, t -> { });
                assertEquals(60, cached.length);
                assertArrayEquals(recomputed, cached);
            }
            // a tiny random model may settle into repeating a token; the logits at every step are the stronger check
            try (LlamaModel model = LlamaModel.load(c, checkpoint.weights(), Device.cpu(), DataType.FLOAT64)) {
                assertCachedLogitsEqualFullForward(model, prompt, 20);
            }
        }
    }

    /** Feeding the prompt, then fixed tokens one by one, gives the logits the full forward pass gives at each position. */
    private static void assertCachedLogitsEqualFullForward(LlamaModel model, int[] prompt, int steps) {
        int vocab = model.config().vocabSize();
        int[] sequence = new int[prompt.length + steps];
        System.arraycopy(prompt, 0, sequence, 0, prompt.length);
        for (int i = prompt.length; i < sequence.length; i++) {
            sequence[i] = (5 * i + 1) % vocab;
        }
        double[] full = logits(model, sequence, null);
        try (KvCache cache = model.newKvCache(sequence.length)) {
            int fed = 0;
            for (int end = prompt.length; end <= sequence.length; end++) {
                double[] step = logits(model, Arrays.copyOfRange(sequence, fed, end), cache);
                for (int i = 0; i < step.length; i++) {
                    assertEquals(full[fed * vocab + i], step[i], 1e-10, "position " + (fed + i / vocab));
                }
                fed = end;
            }
            assertEquals(sequence.length, cache.length());
        }
    }

    private static double[] logits(LlamaModel model, int[] ids, KvCache cache) {
        try (NDManager m = model.manager().newSubManager()) {
            NDArray input = m.create(Arrays.stream(ids).asLongStream().toArray(), new Shape(1, ids.length));
            return (cache == null ? model.forward(input, ActivationTap.NONE) : model.forward(input, cache)).toDoubleArray();
        }
    }

    @Test
    void positionTablesAreSlicesOfOneTable() {
        ModelConfig c = TinyCheckpoints.tinyConfig("LlamaForCausalLM");
        try (NDManager owner = NDManager.newBaseManager(Device.cpu(), "PyTorch");
             PositionTables tables = new PositionTables(c, owner, DataType.FLOAT64)) {
            double[] cos16;
            double[] mask16;
            try (NDManager a = owner.newSubManager()) {
                cos16 = tables.rope(0, 16, a)[0].toDoubleArray();
                mask16 = tables.causalMask(0, 16, a).toDoubleArray();
            }
            // the caller's manager is closed: the tables must still be there, and shorter requests are their slices
            try (NDManager b = owner.newSubManager()) {
                double[] cos = tables.rope(3, 7, b)[0].toDoubleArray();
                assertArrayEquals(Arrays.copyOfRange(cos16, 3 * c.headDim(), 7 * c.headDim()), cos);
                double[] mask = tables.causalMask(2, 5, b).toDoubleArray();
                for (int i = 0; i < 3; i++) {
                    for (int j = 0; j < 5; j++) {
                        assertEquals(mask16[(i + 2) * 16 + j], mask[i * 5 + j], "mask " + i + "," + j);
                    }
                }
                assertEquals(0, mask[2 * 5 + 4]); // position 4 sees itself
                assertTrue(mask[0 * 5 + 3] < -1e29); // position 2 does not see position 3
            }
        }
    }

    private static ModelConfig withRope(ModelConfig c, RopeStyle rope) {
        return new ModelConfig(c.architecture(), c.vocabSize(), c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(),
                c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.rmsNormEps(), c.ropeTheta(),
                c.maxPositionEmbeddings(), c.tieWordEmbeddings(), c.attentionBias(), c.qkNorm(), rope, c.bosTokenId(),
                c.eosTokenId());
    }
}
