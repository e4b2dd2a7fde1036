package ai.hfprune.engine.model;

import ai.hfprune.engine.io.SafetensorsSource.Dtype;
import ai.hfprune.engine.io.SafetensorsWriter;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Loading a model needs at most about 1.5x its float32 size in resident memory, measured by {@link LoadMemoryProbe}
 * in a fresh JVM on a random checkpoint of about 105 MB in float32.
 */
class LoadMemoryTest {

    @ParameterizedTest(name = "{0}, shards of at most {1} bytes")
    @CsvSource({"F32, " + SafetensorsWriter.NO_SHARDING, "BF16, 16000000", "F16, 16000000"})
    void loadingNeedsAtMostOneAndAHalfTimesTheFloat32Size(String dtype, long maxShardBytes, @TempDir Path dir) {
        RandomModels.writeHuggingFace(RandomModels.llama(8192, 512, 1536, 6, 8, 4), 7, Dtype.parse(dtype, "test"),
                maxShardBytes, dir);
        LoadMemoryProbe.Result r = LoadMemoryProbe.measure(dir).orElse(null);
        assumeTrue(r != null, "needs Linux's /proc/self/status and clear_refs");
        System.out.printf("%s: float32 size %d MB, peak growth while loading %d MB, ratio %.2f%n",
                dtype, r.float32Bytes() >> 20, r.peakGrowthBytes() >> 20, r.ratio());
        // The lower bound shows that the measurement sees the weights at all.
        assertTrue(r.ratio() > 0.9, "the loaded weights must show in resident memory; ratio " + r.ratio());
        assertTrue(r.ratio() <= 1.5, "loading took " + r.ratio() + "x the model's float32 size");
    }
}
