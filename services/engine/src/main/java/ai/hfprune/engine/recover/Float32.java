package ai.hfprune.engine.recover;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

/** Reads an array's values out as float32, whatever the model's data type (float64 in gradient checks). */
final class Float32 {
    private Float32() {
    }

    static float[] of(NDArray x) {
        if (x.getDataType() == DataType.FLOAT32) {
            return x.toFloatArray();
        }
        try (NDArray converted = x.toType(DataType.FLOAT32, true)) {
            return converted.toFloatArray();
        }
    }
}
