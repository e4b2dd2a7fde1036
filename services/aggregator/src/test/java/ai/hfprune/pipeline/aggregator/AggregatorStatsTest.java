package ai.hfprune.pipeline.aggregator;

import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.pipeline.common.DeadLetters;
import ai.hfprune.pipeline.common.GramChunks;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.serde.InMemorySchemaRegistry;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.PruneTrigger;
import ai.hfprune.schemas.StatsPartial;
import ai.hfprune.schemas.Structure;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.test.TestRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The aggregation of Gram statistics on TopologyTestDriver: groups, duplicates, overlaps, bad chunks, what a trigger carries. */
class AggregatorStatsTest {

    private static final String SCOPE = "aggregator-stats-test";
    private static final ModelId MODEL = new ModelId("tiny", "abc123");
    /** 2 layers; MLP widths 3 and 2; 2 query heads of size 2: Gram sides 3, 4 (layer 0) and 2, 4 (layer 1). */
    private static final ModelInfo INFO = new ModelInfo(MODEL, new LayerWidths(new int[] {3, 2}, new int[] {2, 2}, new int[] {1, 1}), 2, 3);
    /** The scorers' chunks: two values each (one row of a side-4 matrix needs two chunks' worth: a chunk is one row then). */
    private static final long SCORER_CHUNK = 16;
    /** The aggregator's chunks: three values, so its layout differs from the scorers'. */
    private static final long AGGREGATOR_CHUNK = 24;

    @TempDir
    Path stateDir;

    private TopologyTestDriver driver;
    private Topics topics;
    private SimpleMeterRegistry meters;
    private TestInputTopic<String, byte[]> rawPartials;
    private TestInputTopic<String, byte[]> rawStats;
    private TestOutputTopic<String, CoverageSnapshot> coverage;
    private TestOutputTopic<String, PruneTrigger> triggers;
    private TestOutputTopic<String, StatsPartial> versionStats;
    private TestOutputTopic<byte[], byte[]> deadLetters;

    private void start(long minTokens) {
        topics = new Topics("t.", InMemorySchemaRegistry.scope(SCOPE));
        meters = new SimpleMeterRegistry();
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "aggregator-stats-test");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        driver = new TopologyTestDriver(AggregatorTopology.build(topics, List.of(INFO), minTokens, 1_000_000, AGGREGATOR_CHUNK, meters,
                "test"), props);
        rawPartials = driver.createInputTopic(topics.importancePartials.name(), Serdes.String().serializer(), Serdes.ByteArray().serializer());
        rawStats = driver.createInputTopic(topics.statsPartials.name(), Serdes.String().serializer(), Serdes.ByteArray().serializer());
        coverage = driver.createOutputTopic(topics.coverage.name(), Serdes.String().deserializer(), topics.coverage.valueSerde().deserializer());
        triggers = driver.createOutputTopic(topics.pruneTriggers.name(), Serdes.String().deserializer(), topics.pruneTriggers.valueSerde().deserializer());
        versionStats = driver.createOutputTopic(topics.calibrationStats.name(), Serdes.String().deserializer(),
                topics.calibrationStats.valueSerde().deserializer());
        deadLetters = driver.createOutputTopic(topics.deadLetters.name(), Serdes.ByteArray().deserializer(), Serdes.ByteArray().deserializer());
    }

    @AfterEach
    void stop() {
        if (driver != null) {
            driver.close();
        }
        InMemorySchemaRegistry.drop(SCOPE);
    }

    // ---- helpers ----

    /** A symmetric integer matrix with a positive diagonal, distinct per layer, structure and factor. */
    private static double[] gram(int layer, Structure s, double f) {
        int n = INFO.gramDim(layer, s);
        double[] m = new double[n * n];
        int shift = layer + (s == Structure.MLP ? 0 : 3);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                m[i * n + j] = f * ((i + 1 + shift) * (j + 1 + shift) + (i == j ? 1 : 0));
            }
        }
        return m;
    }

    /** Every chunk of a group whose matrices are {@link #gram} times {@code f}, chunked as scorers do at SCORER_CHUNK. */
    private static List<StatsPartial> group(String groupId, List<String> batchIds, long tokens, double f) {
        List<StatsPartial> out = new ArrayList<>();
        for (int l = 0; l < 2; l++) {
            for (Structure s : Structure.values()) {
                int n = INFO.gramDim(l, s);
                List<GramChunks.Rows> layout = GramChunks.layout(n, SCORER_CHUNK);
                for (int c = 0; c < layout.size(); c++) {
                    GramChunks.Rows rows = layout.get(c);
                    out.add(StatsPartial.newBuilder().setGroupId(groupId).setBatchIds(batchIds).setModel(MODEL).setCriterion("entropy")
                            .setNumLayers(2).setLayer(l).setStructure(s).setDim(n).setChunk(c).setChunks(layout.size())
                            .setRowStart(rows.start()).setRowEnd(rows.end()).setTokens(tokens).setWindows(tokens / 10)
                            .setValues(GramChunks.toBytes(GramChunks.pack(gram(l, s, f), n, rows.start(), rows.end()))).build());
                }
            }
        }
        return out;
    }

    /** Output sensitivities of a layer's structure: {@code hidden} positive values, distinct per layer, structure and factor. */
    private static double[] sensitivity(int layer, Structure s, double f) {
        double[] v = new double[INFO.hiddenSize()];
        for (int i = 0; i < v.length; i++) {
            v[i] = f * (1 + i + 10 * layer + (s == Structure.MLP ? 0 : 100));
        }
        return v;
    }

    /** The group with output sensitivities ({@link #sensitivity} times {@code f}) on each matrix's first chunk, as scorers send them. */
    private static List<StatsPartial> withSensitivity(List<StatsPartial> group, double f) {
        return group.stream().map(c -> c.getRowStart() != 0 ? c : StatsPartial.newBuilder(c)
                .setOutputSensitivity(GramChunks.toBytes(sensitivity(c.getLayer(), c.getStructure(), f))).build()).toList();
    }

    private static ImportancePartial partial(String batch, int layer, Structure s, long tokens, String group) {
        List<Double> v = new ArrayList<>(Collections.nCopies(INFO.width(layer, s), 1.0));
        return ImportancePartial.newBuilder().setBatchId(batch).setModel(MODEL).setCriterion("entropy").setLayer(layer)
                .setNumLayers(2).setStructure(s).setWindows(tokens / 10).setTokens(tokens).setValues(v).setStatsGroup(group).build();
    }

    private void sendBatch(String batch, long tokens, String group) {
        for (int l = 0; l < 2; l++) {
            for (Structure s : Structure.values()) {
                ImportancePartial p = partial(batch, l, s, tokens, group);
                rawPartials.pipeInput(Keys.partial(MODEL, "entropy", l, s),
                        topics.importancePartials.valueSerde().serializer().serialize(topics.importancePartials.name(), p));
            }
        }
    }

    private void send(StatsPartial c) {
        rawStats.pipeInput(Keys.modelCriterion(c.getModel(), c.getCriterion()), bytes(c));
    }

    private byte[] bytes(StatsPartial c) {
        return topics.statsPartials.valueSerde().serializer().serialize(topics.statsPartials.name(), c);
    }

    /** The version's statistics from calibration-stats, as full matrices [2·layer + structure]. */
    private static double[][] assemble(List<TestRecord<String, StatsPartial>> records, int version) {
        double[][] out = new double[4][];
        for (TestRecord<String, StatsPartial> r : records) {
            StatsPartial c = r.value();
            assertEquals(version, c.getVersion());
            assertEquals(Keys.versionStats(MODEL, "entropy", version, c.getLayer(), c.getStructure(), c.getChunk()), r.key());
            int m = 2 * c.getLayer() + (c.getStructure() == Structure.MLP ? 0 : 1);
            if (out[m] == null) {
                out[m] = new double[c.getDim() * c.getDim()];
            }
            GramChunks.unpack(GramChunks.fromBytes(c.getValues()), c.getDim(), c.getRowStart(), c.getRowEnd(), out[m]);
        }
        return out;
    }

    private static void assertStats(double[][] actual, double f) {
        for (int l = 0; l < 2; l++) {
            for (Structure s : Structure.values()) {
                assertArrayEquals(gram(l, s, f), actual[2 * l + (s == Structure.MLP ? 0 : 1)], 0.0, "layer " + l + " " + s);
            }
        }
    }

    /** Chunks of the aggregator's layout: what a version has on calibration-stats. */
    private static int aggregatorChunks() {
        int n = 0;
        for (int l = 0; l < 2; l++) {
            for (Structure s : Structure.values()) {
                n += GramChunks.layout(INFO.gramDim(l, s), AGGREGATOR_CHUNK).size();
            }
        }
        return n;
    }

    // ---- tests ----

    @Test
    void theStatisticsOfTwoGroupsAreSummedAndTheTriggerCarriesThemExactly() {
        start(120);
        List<StatsPartial> a = group("ga", List.of("a1", "a2"), 80, 1);
        List<StatsPartial> b = group("gb", List.of("b1"), 40, 10);
        assertTrue(a.size() > 8, "many chunks per matrix: " + a.size());
        sendBatch("a1", 40, "ga");
        a.subList(0, 5).forEach(this::send);
        send(b.get(0)); // groups interleave
        sendBatch("a2", 40, "ga");
        a.subList(5, a.size()).forEach(this::send);
        assertTrue(triggers.isEmpty(), "80 tokens");
        b.subList(1, b.size()).forEach(this::send);
        sendBatch("b1", 40, "gb");

        PruneTrigger t = triggers.readValue();
        CoverageSnapshot s = t.getSnapshot();
        assertEquals(120, s.getTokens());
        assertEquals(120, s.getStatsTokens());
        assertEquals(12, s.getStatsWindows());
        assertEquals(3, s.getStatsBatches());
        assertEquals(2, s.getStatsGroups());
        assertEquals(0, s.getStatsGroupsDropped());
        assertEquals(0, s.getPendingBatches());
        assertEquals(aggregatorChunks(), s.getStatsChunks());
        List<TestRecord<String, StatsPartial>> written = versionStats.readRecordsToList();
        assertEquals(s.getStatsChunks(), written.size());
        assertTrue(written.stream().allMatch(r -> r.value().getTokens() == 120 && r.value().getBatchIds().isEmpty()));
        assertStats(assemble(written, 1), 11);
        assertEquals(2.0, meters.counter("hfprune_aggregator_stats_groups", "outcome", "folded").count());
        assertTrue(deadLetters.isEmpty());
        for (CoverageSnapshot c : coverage.readValuesToList()) { // the statistics never run ahead of the scores
            assertTrue(c.getStatsTokens() <= c.getTokens() && c.getStatsBatches() <= c.getBatches(), c.toString());
        }
    }

    /** Scores never run ahead of the statistics: a batch whose group is incomplete is not in the sums yet. */
    @Test
    void aBatchWaitsForItsGroupsStatistics() {
        start(40);
        List<StatsPartial> g = group("g", List.of("b1"), 40, 1);
        g.subList(0, g.size() - 1).forEach(this::send);
        sendBatch("b1", 40, "g");
        assertTrue(triggers.isEmpty(), "the group lacks a chunk");
        CoverageSnapshot before = driver.<String, CoverageSnapshot>getKeyValueStore(PartialAggregator.COVERAGE)
                .get(Keys.modelCriterion(MODEL, "entropy"));
        assertEquals(0, before.getTokens());
        assertEquals(1, before.getPendingBatches());
        send(g.get(g.size() - 1));
        CoverageSnapshot s = triggers.readValue().getSnapshot();
        assertEquals(40, s.getTokens());
        assertEquals(40, s.getStatsTokens());
        assertStats(assemble(versionStats.readRecordsToList(), 1), 1);
        assertEquals(0, driver.getKeyValueStore(StatsGroups.PENDING).approximateNumEntries(), "pending chunks are deleted when folded");
    }

    @Test
    void duplicateChunksAreDroppedPendingOrFolded() {
        start(80);
        List<StatsPartial> g = group("g", List.of("b1", "b2"), 80, 1);
        send(g.get(0));
        send(g.get(0)); // pending duplicate
        g.subList(1, g.size()).forEach(this::send);
        sendBatch("b1", 40, "g");
        sendBatch("b2", 40, "g");
        g.forEach(this::send); // the whole group again (a re-sent transaction) after it was folded
        sendBatch("b3", 40, "");  // a batch without statistics, for a second look at the sums

        List<PruneTrigger> all = triggers.readValuesToList();
        assertEquals(1, all.size());
        assertEquals(80, all.get(0).getSnapshot().getStatsTokens());
        assertStats(assemble(versionStats.readRecordsToList(), 1), 1);
        assertEquals(1.0 + g.size(), meters.counter("hfprune_aggregator_stats_duplicates_dropped").count());
        List<CoverageSnapshot> snapshots = coverage.readValuesToList();
        CoverageSnapshot last = snapshots.get(snapshots.size() - 1);
        assertEquals(120, last.getTokens());
        assertEquals(80, last.getStatsTokens(), "the duplicates added nothing");
        assertEquals(1, last.getStatsGroups());
    }

    /** A batch scored again in a second transaction: that group is dropped whole, its other batch is scored without statistics. */
    @Test
    void aGroupOverlappingAnEarlierOneIsDroppedWhole() {
        start(120);
        List<StatsPartial> a = group("ga", List.of("a1", "a2"), 80, 1);
        List<StatsPartial> c = group("gc", List.of("a2", "c1"), 80, 100);
        a.forEach(this::send);
        sendBatch("a1", 40, "ga");
        sendBatch("a2", 40, "ga");
        c.forEach(this::send);
        sendBatch("a2", 40, "gc"); // duplicates of a2's partials
        sendBatch("c1", 40, "gc");

        CoverageSnapshot s = triggers.readValue().getSnapshot();
        assertEquals(120, s.getTokens());
        assertEquals(3, s.getBatches());
        assertEquals(80, s.getStatsTokens(), "the statistics stand at a1 and a2 only");
        assertEquals(2, s.getStatsBatches());
        assertEquals(1, s.getStatsGroups());
        assertEquals(1, s.getStatsGroupsDropped());
        assertStats(assemble(versionStats.readRecordsToList(), 1), 1);
        assertEquals(1.0, meters.counter("hfprune_aggregator_stats_groups", "outcome", "dropped").count());
        assertEquals(c.size() - 1.0, meters.counter("hfprune_aggregator_stats_duplicates_dropped").count(),
                "the overlapping group's later chunks");
    }

    @Test
    void outputSensitivitiesAreSummedWithTheirGroupsAndTheTriggerCarriesThemOnEachMatrixsFirstChunk() {
        start(120);
        withSensitivity(group("ga", List.of("a1", "a2"), 80, 1), 1).forEach(this::send);
        withSensitivity(group("gb", List.of("b1"), 40, 10), 10).forEach(this::send);
        sendBatch("a1", 40, "ga");
        sendBatch("a2", 40, "ga");
        sendBatch("b1", 40, "gb");

        CoverageSnapshot s = triggers.readValue().getSnapshot();
        assertEquals(120, s.getStatsTokens());
        assertEquals(120, s.getStatsSensitivityTokens());
        List<TestRecord<String, StatsPartial>> written = versionStats.readRecordsToList();
        assertStats(assemble(written, 1), 11);
        int carried = 0;
        for (TestRecord<String, StatsPartial> r : written) {
            StatsPartial c = r.value();
            if (c.getRowStart() == 0) {
                assertArrayEquals(sensitivity(c.getLayer(), c.getStructure(), 11), GramChunks.fromBytes(c.getOutputSensitivity()), 0.0,
                        "layer " + c.getLayer() + " " + c.getStructure());
                carried++;
            } else {
                assertEquals(0, c.getOutputSensitivity().remaining(), "only a matrix's first chunk carries them");
            }
        }
        assertEquals(4, carried, "every matrix");
    }

    /** A sum over some of the groups only would weigh the errors by another sample than the Gram matrices: none travel. */
    @Test
    void aVersionWithAGroupWithoutSensitivitiesCarriesNone() {
        start(80);
        withSensitivity(group("ga", List.of("a1"), 40, 1), 1).forEach(this::send);
        group("gb", List.of("b1"), 40, 10).forEach(this::send);
        sendBatch("a1", 40, "ga");
        sendBatch("b1", 40, "gb");

        CoverageSnapshot s = triggers.readValue().getSnapshot();
        assertEquals(80, s.getStatsTokens());
        assertEquals(40, s.getStatsSensitivityTokens());
        List<TestRecord<String, StatsPartial>> written = versionStats.readRecordsToList();
        assertStats(assemble(written, 1), 11);
        assertTrue(written.stream().noneMatch(r -> r.value().getOutputSensitivity().hasRemaining()));
    }

    @Test
    void badSensitivitiesAreDeadLetteredAndAGroupCarryingThemOnSomeMatricesIsDropped() {
        start(40);
        StatsPartial first = withSensitivity(group("bad", List.of("x1"), 40, 1), 1).get(0);
        StatsPartial second = group("bad", List.of("x1"), 40, 1).get(1);
        assertEquals(0, first.getRowStart());
        assertTrue(second.getRowStart() > 0);
        send(StatsPartial.newBuilder(second).setOutputSensitivity(first.getOutputSensitivity()).build());
        send(StatsPartial.newBuilder(first).setOutputSensitivity(ByteBuffer.wrap(new byte[16])).build());
        double[] negative = sensitivity(0, Structure.MLP, 1);
        negative[2] = -1;
        send(StatsPartial.newBuilder(first).setOutputSensitivity(GramChunks.toBytes(negative)).build());
        List<String> reasons = deadLetters.readRecordsToList().stream()
                .map(r -> DeadLetters.header(r.headers(), DeadLetters.REASON)).toList();
        assertEquals(3, reasons.size(), reasons.toString());
        assertTrue(reasons.get(0).contains("only a matrix's first chunk"), reasons.get(0));
        assertTrue(reasons.get(1).contains("hidden size 3"), reasons.get(1));
        assertTrue(reasons.get(2).contains("-1.0 at index 2"), reasons.get(2));

        List<StatsPartial> mixed = new ArrayList<>(group("gm", List.of("m1"), 40, 1));
        mixed.set(0, withSensitivity(mixed, 1).get(0)); // the first matrix carries them, the others not
        mixed.forEach(this::send);
        sendBatch("m1", 40, "gm");
        CoverageSnapshot s = triggers.readValue().getSnapshot();
        assertEquals(40, s.getTokens());
        assertEquals(0, s.getStatsTokens(), "the inconsistent group is dropped whole");
        assertEquals(0, s.getStatsSensitivityTokens());
        assertEquals(2, s.getStatsGroupsDropped(), "'bad' and 'gm'");
    }

    @Test
    void badChunksAreDeadLetteredWithReasonsAndTheirGroupIsDropped() {
        start(80);
        // bad chunks name a group of their own: a group with a dead-lettered chunk is dropped (it can never be complete)
        StatsPartial good = group("bad", List.of("x1"), 40, 1).get(0);
        String key = Keys.modelCriterion(MODEL, "entropy");
        rawStats.pipeInput(key, "not avro".getBytes());
        StatsPartial otherModel = StatsPartial.newBuilder(good).setModel(new ModelId("tiny", "another-sha")).build();
        send(otherModel);
        rawStats.pipeInput("wrong-key", bytes(good));
        send(StatsPartial.newBuilder(good).setDim(5).build());
        send(StatsPartial.newBuilder(good).setRowEnd(9).build());
        send(StatsPartial.newBuilder(good).setValues(ByteBuffer.wrap(new byte[8])).build());
        double[] nan = GramChunks.fromBytes(good.getValues());
        nan[1] = Double.NaN;
        StatsPartial lost = StatsPartial.newBuilder(good).setGroupId("lost").setBatchIds(List.of("l1"))
                .setValues(GramChunks.toBytes(nan)).build();
        sendBatch("l1", 40, "lost"); // held for its group ...
        send(lost); // ... which can never be complete now
        double[] negative = GramChunks.fromBytes(good.getValues());
        negative[0] = -1;
        send(StatsPartial.newBuilder(good).setValues(GramChunks.toBytes(negative)).build());
        send(StatsPartial.newBuilder(good).setCriterion("fisher").build());
        group("g", List.of("b1"), 40, 1).forEach(this::send);
        sendBatch("b1", 40, "g");

        List<TestRecord<byte[], byte[]>> dead = deadLetters.readRecordsToList();
        List<String> reasons = dead.stream().map(r -> DeadLetters.header(r.headers(), DeadLetters.REASON)).toList();
        assertEquals(9, dead.size(), reasons.toString());
        assertTrue(reasons.get(0).contains("wire format"), reasons.get(0));
        assertTrue(reasons.get(1).contains("not a configured model"), reasons.get(1));
        assertTrue(reasons.get(2).contains("does not match"), reasons.get(2));
        assertTrue(reasons.get(3).contains("side 5"), reasons.get(3));
        assertTrue(reasons.get(4).contains("does not fit a matrix of side 3"), reasons.get(4));
        assertTrue(reasons.get(5).contains("8 bytes"), reasons.get(5));
        assertTrue(reasons.get(6).contains("NaN"), reasons.get(6));
        assertTrue(reasons.get(7).contains("diagonal"), reasons.get(7));
        assertTrue(reasons.get(8).contains("unknown criterion"), reasons.get(8));
        assertEquals("not avro", new String(dead.get(0).value()), "kept as it came");
        assertEquals(topics.statsPartials.name(), DeadLetters.header(dead.get(0).headers(), DeadLetters.SOURCE_TOPIC));

        CoverageSnapshot s = triggers.readValue().getSnapshot(); // the held batch was released, the good group counted
        assertEquals(80, s.getTokens());
        assertEquals(40, s.getStatsTokens());
        assertEquals(2, s.getStatsGroupsDropped(), "'bad' and 'lost'");
        assertEquals(1, s.getStatsGroups());
        assertStats(assemble(versionStats.readRecordsToList(), 1), 1);
        assertNull(driver.getKeyValueStore(StatsGroups.HELD).get(Keys.modelCriterion(MODEL, "entropy") + "|lost|l1"));
    }
}
