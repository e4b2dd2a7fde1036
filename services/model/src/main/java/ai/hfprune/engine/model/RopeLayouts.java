package ai.hfprune.engine.model;

/**
 * Converts q/k projection rows between RoPE layouts. Within each head, GGUF's interleaved row 2j (and 2j+1)
 * is Hugging Face's row j (and j + head_dim/2): the inverse of llama.cpp's convert-time permutation.
 */
public final class RopeLayouts {
    private RopeLayouts() {
    }

    /** Rows of a (rows, cols) row-major matrix (cols = 1 for a bias), from INTERLEAVED to HALF order. */
    public static float[] interleavedToHalf(float[] weight, int rows, int cols, int headDim) {
        float[] out = new float[weight.length];
        int half = headDim / 2;
        for (int head = 0; head < rows / headDim; head++) {
            int base = head * headDim;
            for (int j = 0; j < half; j++) {
                System.arraycopy(weight, (base + 2 * j) * cols, out, (base + j) * cols, cols);
                System.arraycopy(weight, (base + 2 * j + 1) * cols, out, (base + half + j) * cols, cols);
            }
        }
        return out;
    }

    /** The inverse of {@link #interleavedToHalf}. */
    public static float[] halfToInterleaved(float[] weight, int rows, int cols, int headDim) {
        float[] out = new float[weight.length];
        int half = headDim / 2;
        for (int head = 0; head < rows / headDim; head++) {
            int base = head * headDim;
            for (int j = 0; j < half; j++) {
                System.arraycopy(weight, (base + j) * cols, out, (base + 2 * j) * cols, cols);
                System.arraycopy(weight, (base + half + j) * cols, out, (base + 2 * j + 1) * cols, cols);
            }
        }
        return out;
    }
}
