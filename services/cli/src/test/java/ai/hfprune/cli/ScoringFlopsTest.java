package ai.hfprune.cli;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.ScoringFlops;
import ai.hfprune.engine.importance.ScoringMemory;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.nn.LlamaModel;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code bench score}'s FLOP count against the matrix products libtorch's profiler records in one scoring pass of the
 * store path (the layer kernels and the head run exactly the products scoring needs): the count is what the engine does, neither more,
 * which would flatter the GFLOP/s, nor less.
 */
class ScoringFlopsTest {

    @ParameterizedTest(name = "{0} layers, {1} heads over {2} KV heads")
    @CsvSource({"3, 4, 2", "1, 4, 4", "2, 6, 3"})
    void countsTheProductsTheEngineRuns(int layers, int heads, int kvHeads, @TempDir Path dir) {
        ModelConfig c = RandomModels.llama(53, 8 * heads, 40, layers, heads, kvHeads);
        int windows = 2;
        int seqLen = 12;
        int[][] batch = new int[windows][seqLen];
        SplittableRandom r = new SplittableRandom(5);
        for (int[] w : batch) {
            for (int t = 0; t < seqLen; t++) {
                w[t] = r.nextInt(c.vocabSize());
            }
        }
        try (LlamaModel model = LlamaModel.load(c, RandomModels.weights(c, 2), Device.cpu(), DataType.FLOAT32)) {
            ImportanceScorer scorer = new ImportanceScorer(model, ScoringMemory.STORE);
            Path trace = dir.resolve("trace.json");
            OperatorTrace.trace(trace, () -> scorer.score(batch, Set.of(Criterion.ENTROPY)));
            assertEquals(OperatorTrace.matrixProductFlops(trace), windows * ScoringFlops.scoringPerWindow(c, seqLen), 1e-6);
        }
    }
}
