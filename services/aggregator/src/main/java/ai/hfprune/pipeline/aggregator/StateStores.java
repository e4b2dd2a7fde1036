package ai.hfprune.pipeline.aggregator;

import ai.hfprune.pipeline.common.GramChunks;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.schemas.Structure;
import org.apache.kafka.streams.state.KeyValueBytesStoreSupplier;
import org.apache.kafka.streams.state.Stores;

import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/**
 * Where the aggregator's stores live ({@code aggregator.state.store}). Either way the changelogs hold the state and a
 * restart restores it from them; the difference is what a restart after kill -9 finds. Under exactly_once_v2 RocksDB
 * stores without a checkpoint (an unclean end) counted as corrupted: Kafka Streams reopened them, wiped them, restored
 * every one from its changelog and rebalanced once more, which measured 8 to 10 s of a 25 s restart ("Fast
 * recovery"); the aggregator now makes RocksDB stores transactional (KIP-892), which keeps them. In-memory stores
 * have nothing to wipe, but the whole state must fit on the heap: for a 7B model that
 * is a snapshot's Gram sums, 16 GiB per criterion. {@code auto} therefore takes memory only when the bound below fits
 * in a quarter of the heap.
 */
final class StateStores {

    /** The share of the heap the state may take for {@code auto} to keep it in memory. */
    static final double HEAP_SHARE = 0.25;
    /** Gram sums held at once per model|criterion: the sums, and a pending group per scorer (two assumed). */
    static final int STATS_COPIES = 3;
    /** Batches whose partials may wait at once per model|criterion (incomplete batches, held for their groups). */
    static final int PENDING_BATCHES = 256;

    /** The stores' kind, with the state's bound it was chosen by. */
    record Choice(boolean inMemory, long boundBytes, String reason) {
        Function<String, KeyValueBytesStoreSupplier> supplier() {
            return inMemory ? Stores::inMemoryKeyValueStore : Stores::persistentKeyValueStore;
        }
    }

    private StateStores() {
    }

    static Choice choose(PipelineConfig config, List<ModelInfo> models, long maxHeapBytes) {
        String setting = config.aggregatorStateStore();
        long bound = bound(models, criteria(config), !config.compensation().equals("none"));
        return switch (setting) {
            case "memory" -> new Choice(true, bound, "aggregator.state.store=memory");
            case "rocksdb" -> new Choice(false, bound, "aggregator.state.store=rocksdb");
            default -> bound <= HEAP_SHARE * maxHeapBytes
                    ? new Choice(true, bound, "auto: the state's bound fits in a quarter of the heap (" + maxHeapBytes + " bytes)")
                    : new Choice(false, bound, "auto: the state's bound exceeds a quarter of the heap (" + maxHeapBytes + " bytes)");
        };
    }

    /** An upper bound of the state: per model and criterion, the score sums and pending batches, and the Gram sums. */
    static long bound(List<ModelInfo> models, int criteria, boolean stats) {
        long bytes = 0;
        for (ModelInfo m : models) {
            long scores = 0;
            long grams = 0;
            for (int l = 0; l < m.numLayers(); l++) {
                scores += 8L * (m.width(l, Structure.MLP) + m.width(l, Structure.HEADS));
                for (Structure s : Structure.values()) {
                    grams += 8 * GramChunks.packedLength(m.gramDim(l, s)) + 8L * m.hiddenSize();
                }
            }
            bytes += criteria * (scores * (1 + PENDING_BATCHES) + (stats ? STATS_COPIES * grams : 0));
        }
        return bytes;
    }

    private static int criteria(PipelineConfig config) {
        return (int) Arrays.stream(config.get("criteria").split(",")).map(String::strip).filter(c -> !c.isEmpty()).distinct().count();
    }
}
