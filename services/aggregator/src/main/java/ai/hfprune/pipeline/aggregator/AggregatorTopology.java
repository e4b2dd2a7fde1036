package ai.hfprune.pipeline.aggregator;

import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneTrigger;
import ai.hfprune.schemas.StatsPartial;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.state.KeyValueBytesStoreSupplier;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * importance-partials → validate (bad ones → dead letters) → re-key by model|criterion → sum per layer in
 * RocksDB stores, with duplicate dropping and consistent snapshots → coverage (compacted) and prune-triggers; beside
 * them stats-partials (keyed by model|criterion already) → validate → the same aggregation, which folds a scorer
 * group's statistics with its batches and writes each version's summed statistics to calibration-stats in the
 * trigger's transaction.
 */
public final class AggregatorTopology {

    private AggregatorTopology() {
    }

    /** As {@link #build(Topics, List, long, long, long, MeterRegistry, String)} with the default {@code stats.chunk.bytes}. */
    public static Topology build(Topics topics, List<ModelInfo> models, long minTokens, long everyTokens, MeterRegistry meters,
                                 String instance) {
        return build(topics, models, minTokens, everyTokens, PipelineConfig.defaults().statsChunkBytes(), meters, instance);
    }

    /**
     * @param statsChunkBytes the chunk size of the summed statistics (the records on calibration-stats)
     * @param instance        the {@code instance} tag of the aggregator's meters
     */
    public static Topology build(Topics topics, List<ModelInfo> models, long minTokens, long everyTokens, long statsChunkBytes,
                                 MeterRegistry meters, String instance) {
        return build(topics, models, minTokens, everyTokens, statsChunkBytes, Topics.MAX_RECORD_BYTES, meters, instance);
    }

    /** @param recordMaxBytes the largest snapshot or trigger written ({@code record.max.bytes}); a larger version is refused */
    public static Topology build(Topics topics, List<ModelInfo> models, long minTokens, long everyTokens, long statsChunkBytes,
                                 int recordMaxBytes, MeterRegistry meters, String instance) {
        return build(topics, models, new Thresholds(minTokens, everyTokens), statsChunkBytes, recordMaxBytes, meters, instance,
                Stores::persistentKeyValueStore);
    }

    static Topology build(Topics topics, List<ModelInfo> models, Thresholds thresholds, long statsChunkBytes, int recordMaxBytes,
                          MeterRegistry meters, String instance, Function<String, KeyValueBytesStoreSupplier> storeType) {
        StreamsBuilder builder = new StreamsBuilder();
        // Cached stores: within a commit interval, the repeated updates of a key (a layer's sums, the coverage, a
        // batch's pending parts written and deleted again) reach RocksDB and the changelog once, at the commit.
        builder.addStateStore(cached(storeType.apply(PartialAggregator.SUMS), StoreSerdes.doubles()));
        builder.addStateStore(cached(storeType.apply(PartialAggregator.PENDING), StoreSerdes.avro(ImportancePartial.class)));
        builder.addStateStore(cached(storeType.apply(PartialAggregator.BATCHES), Serdes.ByteArray()));
        builder.addStateStore(cached(storeType.apply(PartialAggregator.COMPLETED), Serdes.Long()));
        builder.addStateStore(cached(storeType.apply(PartialAggregator.COVERAGE), StoreSerdes.avro(CoverageSnapshot.class)));
        builder.addStateStore(cached(storeType.apply(StatsGroups.SUMS), StoreSerdes.doubles()));
        builder.addStateStore(cached(storeType.apply(StatsGroups.PENDING), StoreSerdes.avro(StatsPartial.class)));
        builder.addStateStore(cached(storeType.apply(StatsGroups.GROUPS), StatsGroup.serde()));
        builder.addStateStore(cached(storeType.apply(StatsGroups.MEMBERS), Serdes.String()));
        builder.addStateStore(cached(storeType.apply(StatsGroups.HELD), Serdes.Long()));
        Counter deadLetters = meters.counter("hfprune_dead_letters", "service", "aggregator", "instance", instance);

        String partialsTopic = topics.importancePartials.name();
        Map<String, KStream<String, Validated>> partials = builder
                .stream(partialsTopic, Consumed.with(Serdes.String(), Serdes.ByteArray()).withName("partials"))
                .process(() -> new PartialValidator(topics.importancePartials.valueSerde().deserializer(), partialsTopic, models,
                                deadLetters), Named.as("validate"))
                .split(Named.as("partials-"))
                .branch((key, v) -> v instanceof Validated.Invalid, Branched.as("invalid"))
                .defaultBranch(Branched.as("valid"));
        String statsTopic = topics.statsPartials.name();
        Map<String, KStream<String, Validated>> stats = builder
                .stream(statsTopic, Consumed.with(Serdes.String(), Serdes.ByteArray()).withName("stats"))
                .process(() -> new StatsValidator(topics.statsPartials.valueSerde().deserializer(), statsTopic, models, deadLetters),
                        Named.as("validate-stats"))
                .split(Named.as("stats-"))
                .branch((key, v) -> v instanceof Validated.Invalid, Branched.as("invalid"))
                .defaultBranch(Branched.as("valid"));

        partials.get("partials-invalid").merge(stats.get("stats-invalid"), Named.as("invalid"))
                .mapValues(v -> ((Validated.Invalid) v).value())
                .to(topics.deadLetters.name(), Produced.with(Serdes.String(), Serdes.ByteArray()));

        Map<String, AtomicLong> gauges = new ConcurrentHashMap<>();
        KStream<String, Arrival> scored = partials.get("partials-valid")
                .mapValues(v -> ((Validated.Valid) v).partial())
                // every layer of a model and criterion goes to one task, which makes consistent snapshots possible
                .selectKey((key, p) -> Keys.modelCriterion(p.getModel(), p.getCriterion()))
                .repartition(Repartitioned.with(Serdes.String(), topics.importancePartials.valueSerde()).withName("partials-by-model"))
                .mapValues(p -> (Arrival) new Arrival.Partial(p));
        // stats-partials are keyed model|criterion by the scorers and partitioned like partials-by-model: no repartition
        KStream<String, Arrival> chunks = stats.get("stats-valid")
                .mapValues(v -> v instanceof Validated.ValidChunk c ? (Arrival) new Arrival.Chunk(c.chunk())
                        : new Arrival.Lost(((Validated.LostChunk) v).model(), ((Validated.LostChunk) v).groupId(),
                        ((Validated.LostChunk) v).reason()));
        KStream<String, Output> outputs = scored.merge(chunks, Named.as("arrivals"))
                .process(() -> new PartialAggregator(thresholds, models, statsChunkBytes, recordMaxBytes, meters, gauges),
                        Named.as("aggregate"),
                        PartialAggregator.SUMS, PartialAggregator.PENDING, PartialAggregator.BATCHES,
                        PartialAggregator.COMPLETED, PartialAggregator.COVERAGE, StatsGroups.SUMS, StatsGroups.PENDING,
                        StatsGroups.GROUPS, StatsGroups.MEMBERS, StatsGroups.HELD);

        outputs.filter((k, o) -> o instanceof Output.Snapshot)
                .mapValues(o -> ((Output.Snapshot) o).snapshot())
                .to(topics.coverage.name(), Produced.with(Serdes.String(), topics.coverage.valueSerde()));
        // a version's statistics: all of a model|criterion in one partition, so the pruner reads one partition in order
        outputs.filter((k, o) -> o instanceof Output.Stats)
                .map((k, o) -> KeyValue.pair(((Output.Stats) o).key(), ((Output.Stats) o).chunk()), Named.as("version-stats"))
                .to(topics.calibrationStats.name(), Produced.with(Serdes.String(), topics.calibrationStats.valueSerde())
                        .withStreamPartitioner((topic, key, chunk, n) -> Optional.of(Set.of(
                                Topics.statsPartition(Keys.modelCriterion(chunk.getModel(), chunk.getCriterion()), n)))));
        outputs.filter((k, o) -> o instanceof Output.Trigger)
                .mapValues(o -> ((Output.Trigger) o).trigger())
                .to(topics.pruneTriggers.name(), Produced.<String, PruneTrigger>with(Serdes.String(), topics.pruneTriggers.valueSerde()));
        outputs.filter((k, o) -> o instanceof Output.Refused)
                .mapValues(o -> ((Output.Refused) o).result())
                .to(topics.pruneResults.name(), Produced.<String, PruneResult>with(Serdes.String(), topics.pruneResults.valueSerde()));
        return builder.build();
    }

    private static <V> StoreBuilder<KeyValueStore<String, V>> cached(KeyValueBytesStoreSupplier supplier, Serde<V> values) {
        return Stores.keyValueStoreBuilder(supplier, Serdes.String(), values).withCachingEnabled();
    }
}
