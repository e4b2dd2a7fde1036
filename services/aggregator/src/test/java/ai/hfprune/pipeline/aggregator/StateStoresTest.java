package ai.hfprune.pipeline.aggregator;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.pipeline.common.GramChunks;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.schemas.ModelId;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Where the aggregator's stores live: memory for the small models, RocksDB where the Gram sums would not fit. */
class StateStoresTest {

    private static final long HEAP = 4L << 30;

    private static ModelInfo shape(int layers, int hidden, int intermediate, int heads, int kvHeads, int headDim) {
        int[] mlp = new int[layers];
        int[] q = new int[layers];
        int[] kv = new int[layers];
        Arrays.fill(mlp, intermediate);
        Arrays.fill(q, heads);
        Arrays.fill(kv, kvHeads);
        return new ModelInfo(new ModelId("shape", "0"), new LayerWidths(mlp, q, kv), headDim, hidden);
    }

    private static final ModelInfo STORIES_260K = shape(5, 64, 172, 8, 4, 8);
    private static final ModelInfo TINYLLAMA = shape(22, 2048, 5632, 32, 4, 64);

    @Test
    void theBoundCountsTheGramSumsThriceAndTheScoresOfEveryPendingBatch() {
        long grams = 5 * (8 * (GramChunks.packedLength(172) + GramChunks.packedLength(64)) + 2 * 8 * 64);
        long scores = 5 * 8 * (172 + 8);
        assertEquals(2 * (scores * (1 + StateStores.PENDING_BATCHES) + 3 * grams), StateStores.bound(List.of(STORIES_260K), 2, true));
        assertEquals(scores * (1 + StateStores.PENDING_BATCHES), StateStores.bound(List.of(STORIES_260K), 1, false),
                "without the refit no Gram sums are kept");
    }

    @Test
    void autoKeepsASmallModelsStateInMemoryAndALargeOnesInRocksDb() {
        PipelineConfig config = PipelineConfig.defaults();
        assertEquals("auto", config.aggregatorStateStore());
        StateStores.Choice small = StateStores.choose(config, List.of(STORIES_260K), HEAP);
        assertTrue(small.inMemory(), small.toString());
        StateStores.Choice large = StateStores.choose(config, List.of(TINYLLAMA), HEAP);
        assertFalse(large.inMemory(), large.toString());
        assertTrue(large.boundBytes() > 3L * 3_000_000_000L, "three copies of TinyLlama's 2.94 GiB of Gram sums: " + large);
        assertTrue(StateStores.choose(config.with("prune.compensate", "none"), List.of(TINYLLAMA), HEAP).inMemory(),
                "without Gram sums a 1.1B model's state is a few MB");
        assertTrue(StateStores.choose(config.with("aggregator.state.store", "memory"), List.of(TINYLLAMA), HEAP).inMemory());
        assertFalse(StateStores.choose(config.with("aggregator.state.store", "rocksdb"), List.of(STORIES_260K), HEAP).inMemory());
    }

    @Test
    void aBadValueIsRefusedAtStart() {
        HfpruneException e = assertThrows(HfpruneException.class,
                () -> PipelineConfig.defaults().with("aggregator.state.store", "disk").validate());
        assertTrue(e.getMessage().contains("aggregator.state.store: 'disk' is none of auto, memory, rocksdb"), e.getMessage());
    }
}
