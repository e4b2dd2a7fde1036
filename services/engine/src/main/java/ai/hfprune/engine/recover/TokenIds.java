package ai.hfprune.engine.recover;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/** Windows of token ids into NDArrays, and 0-d results out of them. */
final class TokenIds {
    private TokenIds() {
    }

    /** Equal-length windows as an INT64 (windows, T) array in {@code manager}. */
    static NDArray of(NDManager manager, int[][] windows) {
        int t = windows[0].length;
        long[] ids = new long[windows.length * t];
        for (int w = 0; w < windows.length; w++) {
            if (windows[w].length != t) {
                throw new IllegalArgumentException("windows of one batch must have the same length");
            }
            for (int i = 0; i < t; i++) {
                ids[w * t + i] = windows[w][i];
            }
        }
        return manager.create(ids, new Shape(windows.length, t));
    }

    /** The value of a 0-d array, whatever its floating type. */
    static double scalar(NDArray x) {
        return x.getDataType() == DataType.FLOAT64 ? x.getDouble() : x.toType(DataType.FLOAT64, false).getDouble();
    }
}
