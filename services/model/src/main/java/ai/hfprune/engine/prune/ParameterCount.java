package ai.hfprune.engine.prune;

import ai.hfprune.engine.io.TensorSource;

/** Parameters of a checkpoint: the elements of its tensors (tied embeddings are one tensor, so counted once). */
public final class ParameterCount {
    private ParameterCount() {
    }

    public static long of(TensorSource weights) {
        long n = 0;
        for (String name : weights.names()) {
            n += weights.numel(name);
        }
        return n;
    }
}
