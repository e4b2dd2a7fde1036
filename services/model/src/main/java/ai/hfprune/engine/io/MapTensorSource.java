package ai.hfprune.engine.io;

import ai.hfprune.engine.HfpruneException;

import java.nio.FloatBuffer;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/** Tensors held in memory: synthetic models for benchmarks and tests, and weights sliced by the pruner. */
public final class MapTensorSource implements TensorSource {

    public record Tensor(long[] shape, float[] data) {
    }

    private final Map<String, Tensor> tensors = new LinkedHashMap<>();

    public MapTensorSource put(String name, long[] shape, float[] data) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n != data.length) {
            throw new IllegalArgumentException(name + ": " + data.length + " values for shape of " + n);
        }
        tensors.put(name, new Tensor(shape.clone(), data));
        return this;
    }

    public Tensor get(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new HfpruneException("no tensor " + name);
        }
        return t;
    }

    @Override
    public Set<String> names() {
        return Collections.unmodifiableSet(tensors.keySet());
    }

    @Override
    public long[] shape(String name) {
        return get(name).shape().clone();
    }

    @Override
    public void readFloats(String name, long first, FloatBuffer dst) {
        dst.put(get(name).data(), Math.toIntExact(first), dst.remaining());
    }

    @Override
    public void close() {
    }
}
