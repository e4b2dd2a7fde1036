package ai.hfprune.engine.model;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.TensorSource;

import java.nio.FloatBuffer;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * The tensors of {@link RandomModels#generated}: nothing is stored, each row is drawn when it is read from a generator
 * seeded by (seed, tensor, row), so any range reads the same values whichever way it is split.
 */
final class GeneratedWeights implements TensorSource {

    private final Map<String, RandomModels.Spec> specs = new LinkedHashMap<>();
    private final Map<String, Long> seeds = new LinkedHashMap<>();

    GeneratedWeights(List<RandomModels.Spec> list, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        for (RandomModels.Spec s : list) {
            specs.put(s.name(), s);
            seeds.put(s.name(), random.nextLong());
        }
    }

    @Override
    public Set<String> names() {
        return Collections.unmodifiableSet(specs.keySet());
    }

    @Override
    public long[] shape(String name) {
        return spec(name).shape().clone();
    }

    @Override
    public void readFloats(String name, long first, FloatBuffer dst) {
        RandomModels.Spec s = spec(name);
        long[] shape = s.shape();
        long rowLength = shape.length < 2 ? Math.max(1, s.numel()) : s.numel() / shape[0];
        double halfWidth = Math.sqrt(3) * s.std(); // uniform on [mean − √3σ, mean + √3σ] has standard deviation σ
        long end = first + dst.remaining();
        long index = first;
        while (index < end) {
            long row = index / rowLength;
            SplittableRandom r = new SplittableRandom(seeds.get(name) * 0x9E3779B97F4A7C15L + row);
            long column = index % rowLength;
            for (long skip = 0; skip < column; skip++) {
                r.nextDouble();
            }
            for (; column < rowLength && index < end; column++, index++) {
                dst.put((float) (s.mean() + halfWidth * (2 * r.nextDouble() - 1)));
            }
        }
    }

    private RandomModels.Spec spec(String name) {
        RandomModels.Spec s = specs.get(name);
        if (s == null) {
            throw new HfpruneException("no tensor " + name);
        }
        return s;
    }

    @Override
    public void close() {
    }
}
