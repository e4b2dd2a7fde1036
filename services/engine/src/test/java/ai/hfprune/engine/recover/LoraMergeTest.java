package ai.hfprune.engine.recover;

import ai.hfprune.engine.nn.TokenArrays;
import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.io.MapTensorSource;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.testing.ReferenceForward;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What LoRA trains is what it exports: the adapted forward pass (x·Wᵀ + 2·(x·Aᵀ)·Bᵀ, through the projection hook)
 * computes the same logits as a plain model loaded from the merged weights, and both match an independent forward
 * pass (plain Java, float64) of W + (α/R)·B·A merged in plain Java from the adapters' values.
 */
@ExtendWith(OneThread.class)
class LoraMergeTest {

    @ParameterizedTest
    @ValueSource(strings = {"Qwen2ForCausalLM", "Qwen3ForCausalLM"})
    void mergedWeightsComputeWhatTheAdaptersCompute(String architecture) {
        int rank = 4;
        try (TinyDistillation tiny = new TinyDistillation(architecture, 5);
             LoraAdapters lora = (LoraAdapters) tiny.adaptation(rank)) {
            SplittableRandom r = new SplittableRandom(2);
            for (int l = 0; l < 2; l++) {
                for (String target : LoraAdapters.TARGETS) {
                    NDArray b = lora.adapter(l, target)[1]; // as after training: B is zero only at the start
                    for (long i = 0; i < b.size(); i++) {
                        InPlace.set(b, i, 0.5 * (r.nextDouble() - 0.5));
                    }
                }
            }
            int[] tokens = TinyDistillation.windows(37, 1, 9, 4)[0];
            double[] adapted = adaptedLogits(lora, tokens);
            TensorSource input = tiny.student.weights();
            MapTensorSource merged = lora.export();

            // the export is a plain model: the input's names and shapes; only the seven projections changed
            assertEquals(input.names(), merged.names());
            for (String name : input.names()) {
                assertArrayEquals(input.shape(name), merged.shape(name), name);
                boolean adaptedWeight = LoraAdapters.TARGETS.stream().anyMatch(t -> name.endsWith(t + ".weight"));
                if (!adaptedWeight) {
                    assertArrayEquals(input.readFloats(name), merged.readFloats(name), name);
                }
            }

            double[] plain = plainLogits(tiny, merged, tokens);
            double[] reference = flatten(new ReferenceForward(tiny.student.config(), javaMerge(lora, input)).logits(tokens));
            double[] unadapted = flatten(new ReferenceForward(tiny.student.config(), input).logits(tokens));
            assertClose(reference, adapted, "adapted forward vs plain-Java merge");
            assertClose(reference, plain, "model loaded from the export vs plain-Java merge");
            assertTrue(maxDifference(unadapted, adapted) > 1e-2, "the adapters changed the function");
        }
    }

    /** W + (α/R)·B·A in plain Java from the adapters' values, every other tensor copied. */
    private static MapTensorSource javaMerge(LoraAdapters lora, TensorSource input) {
        MapTensorSource out = new MapTensorSource();
        double scale = LoraAdapters.ALPHA_PER_RANK; // α/R with α = 2R
        for (String name : input.names()) {
            float[] w = input.readFloats(name);
            long[] shape = input.shape(name);
            for (String target : LoraAdapters.TARGETS) {
                if (name.matches("model\\.layers\\.\\d+\\." + target.replace(".", "\\.") + "\\.weight")) {
                    int layer = Integer.parseInt(name.split("\\.")[2]);
                    double[] a = lora.adapter(layer, target)[0].toDoubleArray(); // (R, in)
                    double[] b = lora.adapter(layer, target)[1].toDoubleArray(); // (out, R)
                    int rows = (int) shape[0];
                    int cols = (int) shape[1];
                    int rank = lora.rank();
                    for (int i = 0; i < rows; i++) {
                        for (int j = 0; j < cols; j++) {
                            double d = 0;
                            for (int k = 0; k < rank; k++) {
                                d += b[i * rank + k] * a[k * cols + j];
                            }
                            w[i * cols + j] = (float) (w[i * cols + j] + scale * d);
                        }
                    }
                }
            }
            out.put(name, shape, w);
        }
        return out;
    }

    private static double[] adaptedLogits(Adaptation lora, int[] tokens) {
        try (NDManager batch = lora.model().manager().newSubManager()) {
            return lora.logits(TokenArrays.ids(batch, new int[][] {tokens})).toDoubleArray();
        }
    }

    private static double[] plainLogits(TinyDistillation tiny, TensorSource weights, int[] tokens) {
        try (LlamaModel model = LlamaModel.load(tiny.student.config(), weights, Device.cpu(), DataType.FLOAT64);
             NDManager batch = model.manager().newSubManager()) {
            return model.forward(TokenArrays.ids(batch, new int[][] {tokens}), ActivationTap.NONE).toDoubleArray();
        }
    }

    private static double[] flatten(double[][] rows) {
        return java.util.Arrays.stream(rows).flatMapToDouble(java.util.Arrays::stream).toArray();
    }

    /** Within float32 rounding of the merged weights: 1e-5 of the largest logit. */
    private static void assertClose(double[] expected, double[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        double maxAbs = 0;
        for (double e : expected) {
            maxAbs = Math.max(maxAbs, Math.abs(e));
        }
        assertTrue(maxAbs > 0.1, what + ": logits near zero prove nothing");
        assertTrue(maxDifference(expected, actual) <= 1e-5 * maxAbs,
                what + ": max |difference| " + maxDifference(expected, actual) + " (max |logit| " + maxAbs + ")");
    }

    private static double maxDifference(double[] a, double[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
        }
        return d;
    }
}
