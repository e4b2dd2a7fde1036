package ai.hfprune.engine.recover;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.hfprune.engine.nn.GradientLock;

/** Test helpers that change trainable arrays in place, outside autograd (PyTorch refuses in-place ops on leaves). */
final class InPlace {
    private InPlace() {
    }

    /** Sets one element, by its row-major index. */
    static void set(NDArray array, long flatIndex, double value) {
        long[] shape = array.getShape().getShape();
        long[] index = new long[shape.length];
        long rest = flatIndex;
        for (int d = shape.length - 1; d >= 0; d--) {
            index[d] = rest % shape[d];
            rest /= shape[d];
        }
        withoutGrad(() -> array.set(new NDIndex(index), value));
    }

    /** Replaces every value of {@code array} by {@code values} (same shape). */
    static void assign(NDArray array, NDArray values) {
        withoutGrad(() -> array.set(new NDIndex("..."), values));
    }

    /** Every trainable array's gradient, zeroed, as PyTorch would accumulate the next backward pass into it. */
    static void zeroGradients(Adaptation student) {
        student.parameters().values().forEach(p -> JniUtils.zeroGrad((PtNDArray) p));
    }

    private static void withoutGrad(Runnable r) {
        synchronized (GradientLock.LOCK) {
            boolean was = JniUtils.isGradMode();
            JniUtils.setGradMode(false);
            try {
                r.run();
            } finally {
                JniUtils.setGradMode(was);
            }
        }
    }
}
