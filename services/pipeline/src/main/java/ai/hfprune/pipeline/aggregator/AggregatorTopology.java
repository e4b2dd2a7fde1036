package ai.hfprune.pipeline.aggregator;

import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.PruneTrigger;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
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
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * importance-partials → validate (bad ones → dead letters) → re-key by model|criterion → sum per layer in
 * RocksDB stores, with duplicate dropping and consistent snapshots → coverage (compacted) and prune-triggers.
 */
public final class AggregatorTopology {

    private AggregatorTopology() {
    }

    /** @param instance the {@code instance} tag of the aggregator's meters */
    public static Topology build(Topics topics, List<ModelInfo> models, long minTokens, long everyTokens, MeterRegistry meters,
                                 String instance) {
        return build(topics, models, new Thresholds(minTokens, everyTokens), meters, instance, Stores::persistentKeyValueStore);
    }

    static Topology build(Topics topics, List<ModelInfo> models, Thresholds thresholds, MeterRegistry meters, String instance,
                          Function<String, KeyValueBytesStoreSupplier> storeType) {
        StreamsBuilder builder = new StreamsBuilder();
        // Cached stores: within a commit interval, the repeated updates of a key (a layer's sums, the coverage, a
        // batch's pending parts written and deleted again) reach RocksDB and the changelog once, at the commit.
        builder.addStateStore(cached(storeType.apply(PartialAggregator.SUMS), StoreSerdes.doubles()));
        builder.addStateStore(cached(storeType.apply(PartialAggregator.PENDING), StoreSerdes.avro(ImportancePartial.class)));
        builder.addStateStore(cached(storeType.apply(PartialAggregator.BATCHES), Serdes.ByteArray()));
        builder.addStateStore(cached(storeType.apply(PartialAggregator.COMPLETED), Serdes.Long()));
        builder.addStateStore(cached(storeType.apply(PartialAggregator.COVERAGE), StoreSerdes.avro(CoverageSnapshot.class)));

        String partialsTopic = topics.importancePartials.name();
        Map<String, KStream<String, Validated>> branches = builder
                .stream(partialsTopic, Consumed.with(Serdes.String(), Serdes.ByteArray()).withName("partials"))
                .process(() -> new PartialValidator(topics.importancePartials.valueSerde().deserializer(), partialsTopic, models,
                                meters.counter("hfprune_dead_letters", "service", "aggregator", "instance", instance)),
                        Named.as("validate"))
                .split(Named.as("partials-"))
                .branch((key, v) -> v instanceof Validated.Invalid, Branched.as("invalid"))
                .defaultBranch(Branched.as("valid"));

        branches.get("partials-invalid")
                .mapValues(v -> ((Validated.Invalid) v).value())
                .to(topics.deadLetters.name(), Produced.with(Serdes.String(), Serdes.ByteArray()));

        Map<String, AtomicLong> gauges = new ConcurrentHashMap<>();
        KStream<String, Output> outputs = branches.get("partials-valid")
                .mapValues(v -> ((Validated.Valid) v).partial())
                // every layer of a model and criterion goes to one task, which makes consistent snapshots possible
                .selectKey((key, p) -> Keys.modelCriterion(p.getModel(), p.getCriterion()))
                .repartition(Repartitioned.with(Serdes.String(), topics.importancePartials.valueSerde()).withName("partials-by-model"))
                .process(() -> new PartialAggregator(thresholds, meters, gauges), Named.as("aggregate"),
                        PartialAggregator.SUMS, PartialAggregator.PENDING, PartialAggregator.BATCHES,
                        PartialAggregator.COMPLETED, PartialAggregator.COVERAGE);

        outputs.filter((k, o) -> o instanceof Output.Snapshot)
                .mapValues(o -> ((Output.Snapshot) o).snapshot())
                .to(topics.coverage.name(), Produced.with(Serdes.String(), topics.coverage.valueSerde()));
        outputs.filter((k, o) -> o instanceof Output.Trigger)
                .mapValues(o -> ((Output.Trigger) o).trigger())
                .to(topics.pruneTriggers.name(), Produced.<String, PruneTrigger>with(Serdes.String(), topics.pruneTriggers.valueSerde()));
        return builder.build();
    }

    private static <V> StoreBuilder<KeyValueStore<String, V>> cached(KeyValueBytesStoreSupplier supplier, Serde<V> values) {
        return Stores.keyValueStoreBuilder(supplier, Serdes.String(), values).withCachingEnabled();
    }
}
