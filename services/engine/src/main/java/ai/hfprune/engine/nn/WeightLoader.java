package ai.hfprune.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.io.TensorSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/** Streams tensors from a {@link TensorSource} into NDArrays through one staging buffer of a few MB. */
final class WeightLoader {
    private static final int STAGING_FLOATS = 1 << 20;
    private final TensorSource source;
    private final NDManager manager;
    private final DataType dataType;
    private ByteBuffer stagingBytes;

    WeightLoader(TensorSource source, NDManager manager, DataType dataType) {
        this.source = source;
        this.manager = manager;
        this.dataType = dataType;
    }

    NDArray optional(String name) {
        return source.has(name) ? get(name) : null;
    }

    /**
     * The tensor in memory PyTorch owns, filled a few rows at a time through one staging buffer: the weights then
     * never sit in Java's direct memory (whose default limit is the heap's size) and never exist twice.
     */
    NDArray get(String name) {
        long[] shape = source.shape(name);
        long rows = shape.length == 0 ? 1 : shape[0];
        long rowElements = source.numel(name) / Math.max(rows, 1);
        long rowsPerChunk = Math.max(1, STAGING_FLOATS / Math.max(rowElements, 1));
        NDArray array = manager.create(new Shape(shape), DataType.FLOAT32); // uninitialized
        try {
            for (long row = 0; row < rows; row += rowsPerChunk) {
                long n = Math.min(rowsPerChunk, rows - row);
                FloatBuffer floats = staging(n * rowElements);
                source.readFloats(name, row * rowElements, floats);
                long[] partShape = shape.clone();
                if (partShape.length > 0) {
                    partShape[0] = n;
                }
                try (NDArray part = manager.create(stagingBytes, new Shape(partShape), DataType.FLOAT32)) {
                    if (shape.length == 0) {
                        array.set(part.toFloatArray());
                    } else {
                        array.set(new NDIndex("{}:{}", row, row + n), part);
                    }
                }
            }
        } catch (RuntimeException e) {
            array.close();
            throw e;
        }
        if (dataType == DataType.FLOAT32) {
            return array;
        }
        NDArray converted = array.toType(dataType, false);
        array.close();
        return converted;
    }

    /** The staging buffer with room for exactly {@code floats} values (grown when one row needs more). */
    private FloatBuffer staging(long floats) {
        int bytes = Math.toIntExact(floats * 4);
        if (stagingBytes == null || stagingBytes.capacity() < bytes) {
            stagingBytes = ByteBuffer.allocateDirect(Math.max(bytes, STAGING_FLOATS * 4)).order(ByteOrder.nativeOrder());
        }
        stagingBytes.clear().limit(bytes);
        return stagingBytes.asFloatBuffer();
    }
}
