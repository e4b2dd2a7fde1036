package ai.hfprune.engine.io;

import java.io.Closeable;
import java.nio.FloatBuffer;
import java.util.Set;

/**
 * Named weight tensors of a checkpoint, read one at a time so that a model never needs its weights
 * in memory twice. Names follow Hugging Face's LLaMA convention ({@code model.layers.0.mlp.down_proj.weight});
 * shapes are in PyTorch order (outermost first).
 */
public interface TensorSource extends Closeable {

    Set<String> names();

    long[] shape(String name);

    /**
     * Copies {@code dst.remaining()} elements of the tensor, from element {@code first} on (row-major), converted to
     * float32 (F16/BF16 upcast, Q8_0 dequantized) into {@code dst}. Loading reads large tensors a few rows at a time.
     * Q8_0 ranges start and end on whole blocks of 32 elements (true for whole rows).
     */
    void readFloats(String name, long first, FloatBuffer dst);

    /** Copies the whole tensor, converted to float32, row-major into {@code dst} from its position on. */
    default void readFloats(String name, FloatBuffer dst) {
        int n = Math.toIntExact(numel(name));
        if (dst.remaining() < n) {
            throw new IllegalArgumentException("buffer has room for " + dst.remaining() + " floats, but " + name + " has " + n);
        }
        readFloats(name, 0, dst.slice().limit(n));
        dst.position(dst.position() + n);
    }

    default boolean has(String name) {
        return names().contains(name);
    }

    default long numel(String name) {
        long n = 1;
        for (long d : shape(name)) {
            n *= d;
        }
        return n;
    }

    /** Reads the whole tensor into a new array (for small tensors and tests). */
    default float[] readFloats(String name) {
        long n = numel(name);
        if (n > Integer.MAX_VALUE) {
            throw new IllegalStateException(name + " is too large for one array");
        }
        float[] out = new float[(int) n];
        readFloats(name, FloatBuffer.wrap(out));
        return out;
    }

    @Override
    void close();
}
