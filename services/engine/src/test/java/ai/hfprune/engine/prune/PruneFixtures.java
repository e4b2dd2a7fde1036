package ai.hfprune.engine.prune;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Shared helpers of the pruning tests: random scores, logits, and the dense model with pruned units zeroed. */
public final class PruneFixtures {
    private PruneFixtures() {
    }

    /** Distinct random scores in (0, 1) for every neuron and head. */
    public static Scores randomScores(LayerWidths w, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[][] mlp = new double[w.numLayers()][];
        double[][] heads = new double[w.numLayers()][];
        for (int l = 0; l < w.numLayers(); l++) {
            mlp[l] = r.doubles(w.intermediateSize(l)).toArray();
            heads[l] = r.doubles(w.numAttentionHeads(l)).toArray();
        }
        return new Scores(Criterion.RANDOM, 3, 96, mlp, heads);
    }

    static int[] randomTokens(int vocab, int n, long seed) {
        return new SplittableRandom(seed).ints(n, 0, vocab).toArray();
    }

    /** Logits (seq × vocab, flattened) of one sequence. */
    static float[] logits(ModelConfig c, TensorSource weights, int[] tokens, ActivationTap tap) {
        try (LlamaModel model = LlamaModel.load(c, weights, Device.cpu(), DataType.FLOAT32);
             NDManager batch = model.manager().newSubManager()) {
            long[] ids = Arrays.stream(tokens).asLongStream().toArray();
            return model.forward(batch.create(ids, new Shape(1, ids.length)), tap).toFloatArray();
        }
    }

    /** The dense model's activations with every neuron and head the plan removes multiplied by 0. */
    static ActivationTap zeroPruned(PrunePlan plan) {
        return new ActivationTap() {
            @Override
            public NDArray mlpActivation(int layer, NDArray a) {
                LayerPlan p = plan.layer(layer);
                return a.mul(a.getManager().create(mask(p.originalMlp(), p.keptMlp())));
            }

            @Override
            public NDArray attentionOutput(int layer, NDArray o) {
                LayerPlan p = plan.layer(layer);
                return o.mul(o.getManager().create(mask(p.originalHeads(), p.keptHeads()), new Shape(p.originalHeads(), 1, 1)));
            }
        };
    }

    private static float[] mask(int size, int[] kept) {
        float[] m = new float[size];
        for (int k : kept) {
            m[k] = 1;
        }
        return m;
    }

    /** Max |a − b| ≤ tolerance · max(1, max |a|), and a is not all near zero. */
    static void assertClose(float[] expected, float[] actual, double tolerance, String what) {
        assertTrue(expected.length == actual.length, what + ": " + expected.length + " vs " + actual.length + " values");
        double maxDiff = 0;
        double maxAbs = 0;
        for (int i = 0; i < expected.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(expected[i] - actual[i]));
            maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
        }
        assertTrue(maxAbs > 0.01, what + ": logits are all near zero, the comparison would prove nothing");
        assertTrue(maxDiff <= tolerance * Math.max(1, maxAbs),
                what + ": max |difference| " + maxDiff + " (max |logit| " + maxAbs + ")");
    }

    static double maxDifference(float[] a, float[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
        }
        return d;
    }
}
