package ai.hfprune.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;

import java.util.Arrays;

/** hfprune's float32 log-probability of each window's next tokens, the numbers llama.cpp's are compared with. */
final class HfpruneLogProbs {
    private HfpruneLogProbs() {
    }

    static double[][] of(Checkpoint checkpoint, int[][] windows) {
        double[][] out = new double[windows.length][];
        try (LlamaModel model = checkpoint.load(); NDManager batch = model.manager().newSubManager()) {
            for (int w = 0; w < windows.length; w++) {
                long[] ids = Arrays.stream(windows[w]).asLongStream().toArray();
                NDArray logp = model.forward(batch.create(ids, new Shape(1, ids.length)), ActivationTap.NONE)
                        .logSoftmax(-1);
                float[] flat = logp.toFloatArray();
                int vocab = (int) logp.getShape().get(2);
                out[w] = new double[ids.length - 1];
                for (int t = 0; t + 1 < ids.length; t++) {
                    out[w][t] = flat[t * vocab + windows[w][t + 1]];
                }
            }
        }
        return out;
    }
}
