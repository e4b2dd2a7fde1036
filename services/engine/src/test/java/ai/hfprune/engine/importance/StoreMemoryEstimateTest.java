package ai.hfprune.engine.importance;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.nn.LlamaModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link ScoringMemory#AUTO}: which mode it picks for the memory available, and that it then runs exactly that path. */
class StoreMemoryEstimateTest {

    @Test
    void storesOnlyWhereOneAndAHalfTimesTheEstimateFitsInHalfOfWhatIsAvailable() {
        assertEquals(ScoringMemory.STORE, StoreMemoryEstimate.choose(1000, OptionalLong.of(3000)));
        assertEquals(ScoringMemory.RECOMPUTE, StoreMemoryEstimate.choose(1000, OptionalLong.of(2999)));
        assertEquals(ScoringMemory.RECOMPUTE, StoreMemoryEstimate.choose(1, OptionalLong.empty()), "nothing known: bounded");
    }

    @Test
    void autoRunsThePathItChose() {
        ModelConfig c = RandomModels.llama(40, 16, 24, 2, 4, 2);
        try (LlamaModel model = LlamaModel.load(c, RandomModels.weights(c, 5), Device.cpu(), DataType.FLOAT64)) {
            int[][] windows = TinyWindows.random(c.vocabSize(), 2, 7, 3);
            long estimate = StoreMemoryEstimate.bytes(model, 2, 7);
            ImportanceScorer roomy = new ImportanceScorer(model, ScoringMemory.AUTO, ChunkedHead.DEFAULT_CHUNK_ELEMENTS,
                    () -> OptionalLong.of(3 * estimate));
            ImportanceScorer tight = new ImportanceScorer(model, ScoringMemory.AUTO, ChunkedHead.DEFAULT_CHUNK_ELEMENTS,
                    () -> OptionalLong.of(2 * estimate));
            assertEquals(ScoringMemory.STORE, roomy.modeFor(2, 7));
            assertEquals(ScoringMemory.RECOMPUTE, tight.modeFor(2, 7));
            assertSame(new ImportanceScorer(model, ScoringMemory.STORE).score(windows, Set.of(Criterion.ENTROPY)),
                    roomy.score(windows, Set.of(Criterion.ENTROPY)));
            assertSame(new ImportanceScorer(model, ScoringMemory.RECOMPUTE).score(windows, Set.of(Criterion.ENTROPY)),
                    tight.score(windows, Set.of(Criterion.ENTROPY)));
        }
    }

    @Test
    void theEstimateGrowsWithTheBatchAndQuadraticallyWithTheWindow() {
        ModelConfig c = RandomModels.llama(40, 16, 24, 2, 4, 2);
        try (LlamaModel model = LlamaModel.load(c, RandomModels.weights(c, 5), Device.cpu(), DataType.FLOAT32)) {
            assertEquals(2 * StoreMemoryEstimate.bytes(model, 1, 64), StoreMemoryEstimate.bytes(model, 2, 64), 8);
            // per token, the attention probabilities grow with T: twice T, more than twice the bytes per window
            assertTrue(StoreMemoryEstimate.bytes(model, 1, 128) > 2 * StoreMemoryEstimate.bytes(model, 1, 64));
        }
    }

    @Test
    void aCgroupLimitLeavesItsRoom(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("memory.max"), "max\n");
        Files.writeString(dir.resolve("memory.current"), "100\n");
        assertTrue(StoreMemoryEstimate.cgroupRoom(dir).isEmpty());
        Files.writeString(dir.resolve("memory.max"), "1000\n");
        assertEquals(OptionalLong.of(900), StoreMemoryEstimate.cgroupRoom(dir));
        assertTrue(StoreMemoryEstimate.availableBytes().orElse(1) > 0);
    }

    private static void assertSame(Map<Criterion, Partial> expected, Map<Criterion, Partial> actual) {
        Partial a = expected.get(Criterion.ENTROPY);
        Partial b = actual.get(Criterion.ENTROPY);
        for (int l = 0; l < a.mlp().length; l++) {
            assertArrayEquals(a.mlp()[l], b.mlp()[l], "mlp layer " + l);
            assertArrayEquals(a.heads()[l], b.heads()[l], "heads layer " + l);
        }
    }
}
