package ai.hfprune.engine.prune;

import ai.hfprune.engine.io.SafetensorsWriter;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.model.WeightCheck;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.engine.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sliced model computes exactly what the dense model computes with the removed neurons' activations (A) and
 * the removed heads' outputs (O) multiplied by zero.
 */
class PrunerEquivalenceTest {

    @Test
    void stories260KGgufWithInterleavedRope() {
        try (Checkpoint gguf = Checkpoint.open(Assets.stories260K())) {
            assertEquals(RopeStyle.INTERLEAVED, gguf.config().ropeStyle());
            LayerWidths widths = WeightCheck.layerWidths(gguf.config(), gguf.weights());
            // 5 layers, 172 neurons, 8 heads over 4 KV groups
            assertMatchesMaskedDense(gguf, PruneOptions.uniform(0.3, 0.25), widths, 1);
            assertMatchesMaskedDense(gguf, PruneOptions.uniform(0.5, 0.5).withRoundTo(16).withSkipLayers(Set.of(2)), widths, 2);
            assertMatchesMaskedDense(gguf, PruneOptions.uniform(0.4, 0.35).withAllocation(Allocation.GLOBAL), widths, 3);
        }
    }

    @ParameterizedTest
    @CsvSource({
        "Qwen2ForCausalLM, 0.25, 0.5, uniform",   // q/k/v biases
        "Qwen3ForCausalLM, 0.25, 0.5, uniform",   // q_norm/k_norm, tied embeddings, head_dim != hidden / heads
        "Qwen2ForCausalLM, 0.5, 0.25, global",
        "Qwen3ForCausalLM, 0.4, 0.5, global",
        "LlamaForCausalLM, 0.2, 0.5, uniform"})
    void tinyHuggingFaceModels(String architecture, double mlp, double attn, String allocation, @TempDir Path dir) {
        TinyCheckpoints.writeTinyRandom(dir, architecture, 7, "F32", SafetensorsWriter.NO_SHARDING);
        try (Checkpoint hf = Checkpoint.open(dir)) {
            LayerWidths widths = WeightCheck.layerWidths(hf.config(), hf.weights());
            assertMatchesMaskedDense(hf, PruneOptions.uniform(mlp, attn).withAllocation(Allocation.parse(allocation)), widths, 4);
        }
    }

    @Test
    void slicesWholeRowsAndColumns() {
        ModelConfig c = TinyCheckpoints.tinyConfig("Qwen2ForCausalLM"); // head_dim 8, 4 heads over 2 KV heads, 48 neurons
        var source = new ai.hfprune.engine.io.MapTensorSource();
        TinyCheckpoints.randomTensors(c, 3).forEach(t -> source.put(t.name(), t.shape(), t.data().get()));
        LayerPlan l0 = new LayerPlan(0, 48, new int[] {1, 47}, 2, new int[] {1}, 2);
        LayerPlan l1 = LayerPlan.untouched(1, 48, 2, 2);
        PrunedModel pruned = Pruner.apply(c, source, new PrunePlan(PruneOptions.uniform(0.5, 0.5), java.util.List.of(l0, l1)));
        var w = pruned.weights();
        String p = "model.layers.0.";
        // MLP neurons 1 and 47: gate/up rows, down columns
        assertArrayEquals(new long[] {2, 32}, w.shape(p + "mlp.gate_proj.weight"));
        assertArrayEquals(rows(source.readFloats(p + "mlp.up_proj.weight"), 47, 48, 32), rows(w.readFloats(p + "mlp.up_proj.weight"), 1, 2, 32));
        assertArrayEquals(new long[] {32, 2}, w.shape(p + "mlp.down_proj.weight"));
        assertEquals(source.readFloats(p + "mlp.down_proj.weight")[5 * 48 + 47], w.readFloats(p + "mlp.down_proj.weight")[5 * 2 + 1]);
        // KV group 1: query heads 2 and 3 (rows 16..31 of q), KV head 1 (rows 8..15 of k and v), o columns 16..31
        assertArrayEquals(new long[] {16, 32}, w.shape(p + "self_attn.q_proj.weight"));
        assertArrayEquals(rows(source.readFloats(p + "self_attn.q_proj.bias"), 16, 32, 1), w.readFloats(p + "self_attn.q_proj.bias"));
        assertArrayEquals(rows(source.readFloats(p + "self_attn.k_proj.bias"), 8, 16, 1), w.readFloats(p + "self_attn.k_proj.bias"));
        assertArrayEquals(new long[] {8, 32}, w.shape(p + "self_attn.v_proj.weight"));
        assertArrayEquals(new long[] {32, 16}, w.shape(p + "self_attn.o_proj.weight"));
        assertEquals(source.readFloats(p + "self_attn.o_proj.weight")[3 * 32 + 20],
                w.readFloats(p + "self_attn.o_proj.weight")[3 * 16 + 4]);
        String down1 = "model.layers.1.mlp.down_proj.weight";
        assertArrayEquals(source.readFloats(down1), w.readFloats(down1), "layer 1 is untouched");
        // the config bounds the widest layer
        assertEquals(48, pruned.config().intermediateSize());
        assertEquals(4, pruned.config().numAttentionHeads());
        assertEquals(new LayerWidths(new int[] {2, 48}, new int[] {2, 4}, new int[] {1, 2}), pruned.widths());
        WeightCheck.checkShapes(pruned.config(), w);
    }

    /** Rows [from, to) of a row-major matrix with {@code cols} columns. */
    private static float[] rows(float[] matrix, int from, int to, int cols) {
        return Arrays.copyOfRange(matrix, from * cols, to * cols);
    }

    private static void assertMatchesMaskedDense(Checkpoint checkpoint, PruneOptions options, LayerWidths widths, long seed) {
        ModelConfig c = checkpoint.config();
        PrunedModel pruned = Pruner.prune(checkpoint, PruneFixtures.randomScores(widths, seed), options);
        PrunePlan plan = pruned.plan();
        WeightCheck.checkShapes(pruned.config(), pruned.weights());
        assertEquals(plan.prunedWidths(), WeightCheck.layerWidths(pruned.config(), pruned.weights()));
        assertTrue(pruned.parameters() < ParameterCount.of(checkpoint.weights()), "something was removed");

        int[] tokens = PruneFixtures.randomTokens(c.vocabSize(), 20, seed);
        float[] masked = PruneFixtures.logits(c, checkpoint.weights(), tokens, PruneFixtures.zeroPruned(plan));
        float[] sliced = PruneFixtures.logits(pruned.config(), pruned.weights(), tokens, ActivationTap.NONE);
        PruneFixtures.assertClose(masked, sliced, 1e-4, c.architecture() + " " + options);
        // and the comparison has teeth: pruning changed the function
        float[] dense = PruneFixtures.logits(c, checkpoint.weights(), tokens, ActivationTap.NONE);
        assertTrue(PruneFixtures.maxDifference(dense, sliced) > 1e-3, "pruning changed nothing");
    }
}
