package ai.hfprune.engine.importance;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeScaling;
import ai.hfprune.engine.model.SlidingWindow;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.GradientLock;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.nn.TokenArrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The two {@link ScoringMemory} modes against each other and both against autograd through the whole plain forward
 * pass with the logits whole, on a tiny random model in float64: the same scores and Gram statistics, relative error
 * ≤ 1e-6; and the chunked LM head against the head of all positions at once.
 */
class ScoringMemoryTest {

    private static final double TOLERANCE = 1e-6;
    private static LlamaModel model;
    private static int[][] windows;
    /** LLaMA-like with GGUF's interleaved RoPE, and attention's products one key/value head at a time. */
    private static LlamaModel interleaved;

    @BeforeAll
    static void setUp() {
        // GQA, biases and q/k norms (Qwen3-like): every branch of the layer is recomputed; a sliding window of 4 in
        // layers 1 and 2 (as Qwen2's max_window_layers), which windows of 9 tokens feel
        ModelConfig c = new ModelConfig("Qwen3ForCausalLM", 53, 24, 20, 3, 6, 2, 4, 1e-6, 10000.0, 64,
                false, true, true, RopeStyle.HALF, 1, 2, RopeScaling.NONE, SlidingWindow.fromLayer(4, 1, 3));
        model = LlamaModel.load(c, RandomModels.weights(c, 11), Device.cpu(), DataType.FLOAT64);
        windows = TinyWindows.random(c.vocabSize(), 3, 9, 5);
        ModelConfig llama = new ModelConfig("LlamaForCausalLM", 53, 24, 20, 3, 6, 2, 4, 1e-6, 10000.0, 64,
                false, false, false, RopeStyle.INTERLEAVED, 1, 2);
        interleaved = LlamaModel.load(llama, RandomModels.weights(llama, 12), Device.cpu(), DataType.FLOAT64);
        interleaved.scoreElements(3 * 3 * 9 * 9); // 3 windows, 3 query heads per key/value head, 9 x 9 scores
    }

    @AfterAll
    static void tearDown() {
        model.close();
        interleaved.close();
    }

    /** Chunks of 1, 4 and all 9 positions: the last chunk of 4 and of 1 has no ce term. */
    @ParameterizedTest
    @ValueSource(ints = {1, 4, 9})
    void recomputeGivesTheScoresAndStatisticsOfStore(int positionsPerChunk) {
        Set<Criterion> criteria = Set.of(Criterion.ENTROPY, Criterion.CE, Criterion.ACTIVATION);
        long chunk = (long) positionsPerChunk * windows.length * model.config().vocabSize();
        Map<Criterion, Partial> stored;
        Map<Criterion, Partial> recomputed;
        GramStats storedStats;
        GramStats recomputedStats;
        try (GramAccumulator s = new GramAccumulator(model.manager(), model.layers().size());
             GramAccumulator r = new GramAccumulator(model.manager(), model.layers().size())) {
            stored = new ImportanceScorer(model, ScoringMemory.STORE).score(windows, criteria, s);
            recomputed = new ImportanceScorer(model, ScoringMemory.RECOMPUTE, chunk).score(windows, criteria, r);
            storedStats = s.drain();
            recomputedStats = r.drain();
        }
        for (Criterion c : criteria) {
            Partial a = stored.get(c);
            Partial b = recomputed.get(c);
            assertEquals(a.windows(), b.windows());
            assertEquals(a.tokens(), b.tokens());
            for (int l = 0; l < a.mlp().length; l++) {
                assertRelativelyClose(a.mlp()[l], b.mlp()[l], c + " mlp layer " + l);
                assertRelativelyClose(a.heads()[l], b.heads()[l], c + " heads layer " + l);
            }
        }
        assertEquals(storedStats.tokens(), recomputedStats.tokens());
        assertEquals(storedStats.windows(), recomputedStats.windows());
        for (int l = 0; l < storedStats.numLayers(); l++) {
            assertRelativelyClose(storedStats.mlp()[l], recomputedStats.mlp()[l], "Gram of A, layer " + l);
            assertRelativelyClose(storedStats.attn()[l], recomputedStats.attn()[l], "Gram of O, layer " + l);
            assertRelativelyClose(storedStats.mlpOutputSensitivity()[l], recomputedStats.mlpOutputSensitivity()[l],
                    "sensitivity of the MLP block's output, layer " + l);
            assertRelativelyClose(storedStats.attnOutputSensitivity()[l], recomputedStats.attnOutputSensitivity()[l],
                    "sensitivity of the attention block's output, layer " + l);
        }
    }

    /**
     * Both modes against a second code path: autograd through the whole plain forward pass, the logits whole, with zero
     * probes added to A, O and both blocks' outputs (what the store mode computed before it went layer by layer): the
     * Taylor sums of entropy and ce, and the entropy's output sensitivities.
     */
    @ParameterizedTest
    @EnumSource(value = ScoringMemory.class, names = {"STORE", "RECOMPUTE"})
    void bothModesEqualAutogradThroughTheWholePass(ScoringMemory memory) {
        assertEqualsAutogradThroughTheWholePass(model, memory);
    }

    /** As above with interleaved RoPE and the attention's products in three groups of heads. */
    @ParameterizedTest
    @EnumSource(value = ScoringMemory.class, names = {"STORE", "RECOMPUTE"})
    void interleavedRopeAndGroupsOfHeadsEqualAutogradThroughTheWholePass(ScoringMemory memory) {
        assertEqualsAutogradThroughTheWholePass(interleaved, memory);
    }

    private static void assertEqualsAutogradThroughTheWholePass(LlamaModel model, ScoringMemory memory) {
        for (Criterion c : List.of(Criterion.ENTROPY, Criterion.CE)) {
            GramStats stats;
            Partial scored;
            try (GramAccumulator acc = new GramAccumulator(model.manager(), model.layers().size())) {
                scored = new ImportanceScorer(model, memory).score(windows, Set.of(c), acc).get(c);
                stats = acc.drain();
            }
            int layers = model.layers().size();
            synchronized (GradientLock.LOCK) {
                try (NDManager batch = model.manager().newSubManager();
                     GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector()) {
                    NDArray[][] probes = new NDArray[4][layers]; // A, O, attention block, MLP block
                    NDArray[][] values = new NDArray[2][layers];
                    NDArray ids = TokenArrays.ids(batch, windows);
                    NDArray logits = model.forward(ids, new ActivationTap() {
                        @Override
                        public NDArray mlpActivation(int l, NDArray a) {
                            values[0][l] = a.stopGradient();
                            return a.add(probe(0, l, a));
                        }

                        @Override
                        public NDArray attentionOutput(int l, NDArray o) {
                            values[1][l] = o.stopGradient();
                            return o.add(probe(1, l, o));
                        }

                        @Override
                        public NDArray attentionBlockOutput(int l, NDArray y) {
                            return y.add(probe(2, l, y));
                        }

                        @Override
                        public NDArray mlpBlockOutput(int l, NDArray y) {
                            return y.add(probe(3, l, y));
                        }

                        private NDArray probe(int kind, int l, NDArray like) {
                            probes[kind][l] = batch.zeros(like.getShape(), like.getDataType());
                            probes[kind][l].setRequiresGradient(true);
                            return probes[kind][l];
                        }
                    });
                    NDArray loss = Losses.of(c, logits, ids);
                    JniUtils.backward((PtNDArray) loss, (PtNDArray) loss.onesLike(), false, false);
                    for (int l = 0; l < layers; l++) {
                        assertRelativelyClose(values[0][l].mul(probes[0][l].getGradient()).abs().sum(new int[] {0, 1}).toDoubleArray(),
                                scored.mlp()[l], memory + " " + c + " mlp layer " + l);
                        assertRelativelyClose(values[1][l].mul(probes[1][l].getGradient()).abs().sum(new int[] {0, 2, 3}).toDoubleArray(),
                                scored.heads()[l], memory + " " + c + " heads layer " + l);
                        assertRelativelyClose(probes[2][l].getGradient().square().sum(new int[] {0, 1}).toDoubleArray(),
                                stats.attnOutputSensitivity()[l], memory + " " + c + " attention block's sensitivity, layer " + l);
                        assertRelativelyClose(probes[3][l].getGradient().square().sum(new int[] {0, 1}).toDoubleArray(),
                                stats.mlpOutputSensitivity()[l], memory + " " + c + " MLP block's sensitivity, layer " + l);
                    }
                }
            }
        }
    }

    /** Each criterion alone equals its value among several (they share the forward pass and each recomputation). */
    @Test
    void criteriaAloneEqualCriteriaTogether() {
        ImportanceScorer scorer = new ImportanceScorer(model, ScoringMemory.RECOMPUTE);
        Map<Criterion, Partial> together = scorer.score(windows, Set.of(Criterion.ENTROPY, Criterion.CE, Criterion.ACTIVATION));
        for (Criterion c : together.keySet()) {
            Partial alone = scorer.score(windows, Set.of(c)).get(c);
            for (int l = 0; l < alone.mlp().length; l++) {
                assertRelativelyClose(alone.mlp()[l], together.get(c).mlp()[l], c + " mlp layer " + l);
                assertRelativelyClose(alone.heads()[l], together.get(c).heads()[l], c + " heads layer " + l);
            }
        }
    }

    /** The chunked head's loss and ∂L/∂h_L against Losses.of on the whole logits, differentiated by autograd. */
    @Test
    void chunkedHeadEqualsTheHeadOfAllPositions() {
        List<Criterion> criteria = List.of(Criterion.ENTROPY, Criterion.CE);
        int layers = model.layers().size();
        synchronized (GradientLock.LOCK) {
            try (NDManager batch = model.manager().newSubManager();
                 GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector()) {
                NDArray ids = TokenArrays.ids(batch, windows);
                NDArray hidden = model.embed(ids);
                for (int l = 0; l < layers; l++) {
                    hidden = model.layer(l, hidden, ActivationTap.NONE);
                }
                hidden = hidden.stopGradient();
                long threePositions = 3L * windows.length * model.config().vocabSize();
                ChunkedHead.Result chunked = ChunkedHead.backward(model, hidden, ids, criteria, threePositions);

                NDArray whole = hidden.duplicate();
                whole.setRequiresGradient(true);
                NDArray logits = model.head(whole);
                for (int i = 0; i < criteria.size(); i++) {
                    NDArray loss = Losses.of(criteria.get(i), logits, ids);
                    JniUtils.backward((PtNDArray) loss, (PtNDArray) loss.onesLike(), true, false);
                    assertEquals(loss.getDouble(), chunked.losses()[i], 1e-12 * Math.abs(loss.getDouble()), criteria.get(i) + " loss");
                    assertRelativelyClose(whole.getGradient().toDoubleArray(), chunked.gradients()[i].toDoubleArray(),
                            criteria.get(i) + " gradient of the last hidden state");
                    JniUtils.zeroGrad((PtNDArray) whole);
                }
            }
        }
    }

    /** Every element within TOLERANCE of the vectors' largest magnitude (entries near zero have no relative error). */
    private static void assertRelativelyClose(double[] expected, double[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        double scale = 0;
        for (double e : expected) {
            scale = Math.max(scale, Math.abs(e));
        }
        assertTrue(scale > 0, what + " is all zeros");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], TOLERANCE * scale, what + " index " + i);
        }
    }
}
