package ai.hfprune.pipeline.aggregator;

import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.pipeline.common.DeadLetters;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.serde.InMemorySchemaRegistry;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.PruneTrigger;
import ai.hfprune.schemas.Structure;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.test.TestRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The aggregator's topology on TopologyTestDriver, with RocksDB stores as in production. */
class AggregatorTopologyTest {

    private static final String SCOPE = "aggregator-topology-test";
    private static final ModelId MODEL = new ModelId("tiny", "abc123");
    /** 2 layers; MLP widths 3 and 2; 2 query heads each. */
    private static final ModelInfo INFO = new ModelInfo(MODEL, new LayerWidths(new int[] {3, 2}, new int[] {2, 2}, new int[] {1, 1}), 2, 3);

    @TempDir
    Path stateDir;

    private TopologyTestDriver driver;
    private Topics topics;
    private SimpleMeterRegistry meters;
    private TestInputTopic<String, byte[]> rawPartials;
    private TestOutputTopic<String, CoverageSnapshot> coverage;
    private TestOutputTopic<String, PruneTrigger> triggers;
    private TestOutputTopic<byte[], byte[]> deadLetters;

    @BeforeEach
    void start() {
        startWith(100, 50);
    }

    private void startWith(long minTokens, long everyTokens) {
        topics = new Topics("t.", InMemorySchemaRegistry.scope(SCOPE));
        meters = new SimpleMeterRegistry();
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "aggregator-test");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        driver = new TopologyTestDriver(AggregatorTopology.build(topics, List.of(INFO), minTokens, everyTokens, meters, "test"), props);
        rawPartials = driver.createInputTopic(topics.importancePartials.name(), Serdes.String().serializer(), Serdes.ByteArray().serializer());
        coverage = driver.createOutputTopic(topics.coverage.name(), Serdes.String().deserializer(), topics.coverage.valueSerde().deserializer());
        triggers = driver.createOutputTopic(topics.pruneTriggers.name(), Serdes.String().deserializer(), topics.pruneTriggers.valueSerde().deserializer());
        deadLetters = driver.createOutputTopic(topics.deadLetters.name(), Serdes.ByteArray().deserializer(), Serdes.ByteArray().deserializer());
    }

    @AfterEach
    void stop() {
        driver.close();
        InMemorySchemaRegistry.drop(SCOPE);
    }

    // ---- helpers ----

    private static ImportancePartial partial(String batch, String criterion, int layer, Structure s, long tokens, double... values) {
        List<Double> v = new ArrayList<>();
        for (double d : values) {
            v.add(d);
        }
        return ImportancePartial.newBuilder().setBatchId(batch).setModel(MODEL).setCriterion(criterion).setLayer(layer)
                .setNumLayers(2).setStructure(s).setWindows(tokens / 10).setTokens(tokens).setValues(v).build();
    }

    /** The four parts of one batch, each value scaled by {@code f}. */
    private static List<ImportancePartial> batch(String id, long tokens, double f) {
        return List.of(
                partial(id, "entropy", 0, Structure.MLP, tokens, f, 2 * f, 3 * f),
                partial(id, "entropy", 0, Structure.HEADS, tokens, 10 * f, 20 * f),
                partial(id, "entropy", 1, Structure.MLP, tokens, 5 * f, 6 * f),
                partial(id, "entropy", 1, Structure.HEADS, tokens, 7 * f, 8 * f));
    }

    private void send(ImportancePartial p) {
        rawPartials.pipeInput(Keys.partial(p.getModel(), p.getCriterion(), p.getLayer(), p.getStructure()),
                topics.importancePartials.valueSerde().serializer().serialize(topics.importancePartials.name(), p));
    }

    private void send(List<ImportancePartial> parts) {
        parts.forEach(this::send);
    }

    private static List<Double> list(double... v) {
        List<Double> out = new ArrayList<>();
        for (double d : v) {
            out.add(d);
        }
        return out;
    }

    // ---- tests ----

    @Test
    void sumsEveryLayerAcrossBatchesAndTriggersAtTheThreshold() {
        send(batch("b1", 40, 1));
        send(batch("b2", 40, 2));
        assertTrue(triggers.isEmpty(), "80 tokens: below the first threshold");
        send(batch("b3", 40, 4));

        PruneTrigger t = triggers.readValue();
        assertEquals(1, t.getVersion());
        assertEquals(100, t.getThresholdTokens());
        CoverageSnapshot s = t.getSnapshot();
        assertEquals(120, s.getTokens());
        assertEquals(3, s.getBatches());
        assertEquals(0, s.getPendingBatches());
        assertEquals(2, s.getLayersComplete());
        assertEquals(list(7, 14, 21), s.getLayers().get(0).getMlp());
        assertEquals(list(70, 140), s.getLayers().get(0).getHeads());
        assertEquals(list(35, 42), s.getLayers().get(1).getMlp());
        assertEquals(list(49, 56), s.getLayers().get(1).getHeads());
        assertEquals(Keys.modelCriterion(MODEL, "entropy"), coverage.readKeyValuesToList().get(0).key);
    }

    @Test
    void duplicatesAreDroppedWhetherTheirBatchIsPendingOrSummed() {
        List<ImportancePartial> b1 = batch("b1", 60, 1);
        send(b1.get(0));
        send(b1.get(0)); // pending duplicate
        send(b1.subList(1, 4));
        send(b1); // the whole batch again, after it was summed
        send(batch("b2", 60, 1));

        PruneTrigger t = triggers.readValue();
        assertEquals(120, t.getSnapshot().getTokens());
        assertEquals(2, t.getSnapshot().getBatches());
        assertEquals(list(2, 4, 6), t.getSnapshot().getLayers().get(0).getMlp());
        assertEquals(5.0, meters.counter("hfprune_aggregator_duplicates_dropped").count());
        assertTrue(deadLetters.isEmpty());
    }

    @Test
    void triggersAtTheMinimumThenEveryNMoreTokens() {
        long[] expectedThresholds = {100, 150, 200, 300};
        send(batch("b1", 60, 1));  // 60
        send(batch("b2", 60, 1));  // 120: crosses 100
        send(batch("b3", 40, 1));  // 160: crosses 150
        send(batch("b4", 30, 1));  // 190: none
        send(batch("b5", 20, 1));  // 210: crosses 200
        send(batch("b6", 100, 1)); // 310: crosses 250 and 300, one trigger
        List<PruneTrigger> all = triggers.readValuesToList();
        assertEquals(4, all.size());
        for (int i = 0; i < all.size(); i++) {
            assertEquals(i + 1, all.get(i).getVersion());
            assertEquals(expectedThresholds[i], all.get(i).getThresholdTokens());
        }
    }

    @Test
    void snapshotsHoldOnlyCompleteBatchesForEveryLayer() {
        stop();
        startWith(40, 1000);
        List<ImportancePartial> a = batch("a", 40, 100);
        send(a.get(0)); // batch a: only layer 0's MLP so far
        send(a.get(1));
        send(batch("b", 40, 1)); // batch b complete: the snapshot must not contain any of a
        PruneTrigger t = triggers.readValue();
        CoverageSnapshot s = t.getSnapshot();
        assertEquals(1, s.getBatches());
        assertEquals(1, s.getPendingBatches());
        assertEquals(1, s.getLayersComplete(), "layer 1 still lacks batch a");
        assertEquals(list(1, 2, 3), s.getLayers().get(0).getMlp());
        assertEquals(list(10, 20), s.getLayers().get(0).getHeads());
    }

    @Test
    void criteriaAndModelsNeverMix() {
        send(batch("b1", 100, 1));
        for (ImportancePartial p : batch("b1", 100, 1)) {
            p.setCriterion("ce");
            send(p);
        }
        List<PruneTrigger> all = triggers.readValuesToList();
        assertEquals(2, all.size());
        assertEquals("entropy", all.get(0).getCriterion());
        assertEquals("ce", all.get(1).getCriterion());
        assertEquals(100, all.get(1).getSnapshot().getTokens());
    }

    @Test
    void badRecordsGoToTheDeadLetterTopicAndTheRestGoesOn() {
        String key = Keys.partial(MODEL, "entropy", 0, Structure.MLP);
        rawPartials.pipeInput(key, "not avro at all".getBytes());
        rawPartials.pipeInput(key, new byte[] {0, 0, 0, 0, 99, 1, 2});
        send(partial("b1", "entropy", 0, Structure.MLP, 100, 1, 2)); // wrong length
        send(partial("b1", "entropy", 0, Structure.MLP, 100, 1, Double.NaN, 3));
        send(partial("b1", "entropy", 0, Structure.MLP, 100, 1, Double.POSITIVE_INFINITY, 3));
        ImportancePartial otherModel = partial("b1", "entropy", 0, Structure.MLP, 100, 1, 2, 3);
        otherModel.setModel(new ModelId("tiny", "another-sha"));
        send(otherModel);
        send(partial("b1", "fisher", 0, Structure.MLP, 100, 1, 2, 3));
        rawPartials.pipeInput("wrong-key", topics.importancePartials.valueSerde().serializer().serialize(topics.importancePartials.name(),
                partial("b1", "entropy", 0, Structure.MLP, 100, 1, 2, 3)));
        send(batch("ok", 100, 1));

        List<TestRecord<byte[], byte[]>> dead = deadLetters.readRecordsToList();
        List<String> reasons = dead.stream().map(r -> DeadLetters.header(r.headers(), DeadLetters.REASON)).toList();
        assertEquals(8, dead.size(), reasons.toString());
        assertTrue(reasons.get(0).contains("wire format"), reasons.get(0));
        assertTrue(reasons.get(1).contains("unknown schema id 99"), reasons.get(1));
        assertTrue(reasons.get(2).contains("vector of 2 values"), reasons.get(2));
        assertTrue(reasons.get(3).contains("NaN"), reasons.get(3));
        assertTrue(reasons.get(4).contains("Infinity"), reasons.get(4));
        assertTrue(reasons.get(5).contains("not a configured model"), reasons.get(5));
        assertTrue(reasons.get(6).contains("unknown criterion"), reasons.get(6));
        assertTrue(reasons.get(7).contains("does not match"), reasons.get(7));
        assertEquals("not avro at all", new String(dead.get(0).value()), "the record is kept as it came");
        assertEquals(topics.importancePartials.name(), DeadLetters.header(dead.get(0).headers(), DeadLetters.SOURCE_TOPIC));
        assertEquals("0", DeadLetters.header(dead.get(0).headers(), DeadLetters.SOURCE_OFFSET));

        PruneTrigger t = triggers.readValue(); // nothing bad was counted, the good batch was
        assertEquals(100, t.getSnapshot().getTokens());
        assertEquals(list(1, 2, 3), t.getSnapshot().getLayers().get(0).getMlp());
    }
}
