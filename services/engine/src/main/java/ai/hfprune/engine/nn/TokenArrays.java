package ai.hfprune.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/** Moves token ids into NDArrays and results out of them: the one place scoring, evaluation and recovery do it. */
public final class TokenArrays {
    private TokenArrays() {
    }

    /** Equal-length rows of token ids as an INT64 (rows, length) array in {@code manager}. */
    public static NDArray ids(NDManager manager, int[][] rows) {
        int length = rows[0].length;
        long[] ids = new long[rows.length * length];
        for (int r = 0; r < rows.length; r++) {
            if (rows[r].length != length) {
                throw new IllegalArgumentException("rows of one batch must have the same length");
            }
            for (int i = 0; i < length; i++) {
                ids[r * length + i] = rows[r][i];
            }
        }
        return manager.create(ids, new Shape(rows.length, length));
    }

    /** The values of {@code x} in float64, whatever the model's data type. */
    public static double[] doubles(NDArray x) {
        return x.toType(DataType.FLOAT64, false).toDoubleArray();
    }

    /** The value of a 0-d array, whatever its floating type. */
    public static double scalar(NDArray x) {
        return x.getDataType() == DataType.FLOAT64 ? x.getDouble() : x.toType(DataType.FLOAT64, false).getDouble();
    }
}
