package ai.hfprune.pipeline.aggregator;

import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.LayerScores;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.PruneTrigger;
import ai.hfprune.schemas.Structure;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.api.ContextualProcessor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * Sums the partials of one model and criterion (all of them reach one task: the stream is keyed by model|criterion),
 * and with them the Gram statistics of the scorer groups ({@link StatsGroups}).
 *
 * <p>A batch's partials wait in {@link #PENDING} until every layer and structure of the batch has arrived; then all
 * of them are added to {@link #SUMS} in one step. A batch whose partials name a stats group waits longer, until that
 * group's statistics are complete (or the group is dropped): then the group's statistics and all its batches are
 * added in one step. The sums therefore always stand at a set of complete batches, the same for every layer, and the
 * statistics at the same batches as the scores, less those without statistics: any snapshot is consistent. A partial
 * whose (batch, layer, structure) was seen before is a duplicate (a scorer retried, a producer re-sent) and is dropped.
 * Everything here runs inside the Streams transaction, so a crash never leaves half a batch or half a group summed.
 */
final class PartialAggregator extends ContextualProcessor<String, Arrival, String, Output> {

    /** model|criterion|layer|structure → float64 sums. */
    static final String SUMS = "partial-sums";
    /** model|criterion|batch|layer|structure → the partial, until its batch is folded. */
    static final String PENDING = "pending-partials";
    /** model|criterion|batch → bitset of the parts received, while the batch is pending (or held for its group). */
    static final String BATCHES = "pending-batches";
    /** model|criterion|batch → tokens, once the batch is summed: later copies of its partials are duplicates. */
    static final String COMPLETED = "completed-batches";
    /** model|criterion → coverage (no layer sums). */
    static final String COVERAGE = "coverage";

    private static final StringSerializer KEYS = new StringSerializer();

    private final Thresholds thresholds;
    private final List<ModelInfo> models;
    private final long statsChunkBytes;
    private final Counter duplicates;
    private final Counter folded;
    private final Counter triggers;
    private final Counter refused;
    private final int recordMaxBytes;
    private final MeterRegistry meters;
    private final Map<String, AtomicLong> coverageGauges;

    private KeyValueStore<String, double[]> sums;
    private KeyValueStore<String, ImportancePartial> pending;
    private KeyValueStore<String, byte[]> batches;
    private KeyValueStore<String, Long> completed;
    private KeyValueStore<String, CoverageSnapshot> coverage;
    private StatsGroups stats;

    PartialAggregator(Thresholds thresholds, List<ModelInfo> models, long statsChunkBytes, int recordMaxBytes, MeterRegistry meters,
                      Map<String, AtomicLong> coverageGauges) {
        this.thresholds = thresholds;
        this.recordMaxBytes = recordMaxBytes;
        this.refused = meters.counter("hfprune_aggregator_refused_versions");
        this.models = models;
        this.statsChunkBytes = statsChunkBytes;
        this.meters = meters;
        this.coverageGauges = coverageGauges;
        this.duplicates = meters.counter("hfprune_aggregator_duplicates_dropped");
        this.folded = meters.counter("hfprune_aggregator_batches_complete");
        this.triggers = meters.counter("hfprune_aggregator_triggers");
    }

    @Override
    public void init(ProcessorContext<String, Output> context) {
        super.init(context);
        sums = context.getStateStore(SUMS);
        pending = context.getStateStore(PENDING);
        batches = context.getStateStore(BATCHES);
        completed = context.getStateStore(COMPLETED);
        coverage = context.getStateStore(COVERAGE);
        stats = new StatsGroups(context, statsChunkBytes, meters);
    }

    @Override
    public void process(Record<String, Arrival> record) {
        String mc = record.key();
        Arrival a = record.value();
        if (a instanceof Arrival.Partial p) {
            onPartial(record, mc, p.partial());
        } else if (a instanceof Arrival.Chunk c) {
            ModelInfo model = model(c.chunk().getModel());
            apply(record, mc, model, c.chunk().getNumLayers(), stats.onChunk(mc, c.chunk(), model, done(mc)));
        } else if (a instanceof Arrival.Lost lost) {
            ModelInfo model = model(lost.model());
            apply(record, mc, model, model.numLayers(), stats.onLost(mc, lost.groupId(), lost.reason()));
        }
    }

    private void onPartial(Record<String, Arrival> record, String modelCriterion, ImportancePartial p) {
        String batchKey = modelCriterion + "|" + p.getBatchId();
        int parts = 2 * p.getNumLayers();
        int part = 2 * p.getLayer() + (p.getStructure() == Structure.MLP ? 0 : 1);

        byte[] state = batches.get(batchKey);
        BitSet received = state == null ? new BitSet(parts) : BitSet.valueOf(state);
        if (received.get(part) || (state == null && completed.get(batchKey) != null)) {
            duplicates.increment();
            return;
        }
        CoverageSnapshot cov = coverage(modelCriterion, p);
        if (state == null) {
            cov.setPendingBatches(cov.getPendingBatches() + 1);
        }
        received.set(part);
        pending.put(partKey(batchKey, p.getLayer(), p.getStructure()), p);
        if (received.cardinality() < parts) {
            batches.put(batchKey, toBytes(received, parts));
            coverage.put(modelCriterion, cov);
            return;
        }
        ModelInfo model = model(p.getModel());
        String group = p.getStatsGroup();
        if (!group.isEmpty() && stats.holds(modelCriterion, group)) {
            // complete, but its statistics have not all arrived: it waits for its group
            batches.put(batchKey, toBytes(received, parts));
            coverage.put(modelCriterion, cov);
            stats.hold(modelCriterion, group, p.getBatchId(), p.getTokens());
            apply(record, modelCriterion, model, p.getNumLayers(), stats.tryFold(modelCriterion, group, model, done(modelCriterion)));
            return;
        }
        coverage.put(modelCriterion, cov);
        apply(record, modelCriterion, model, p.getNumLayers(), new StatsGroups.Change(null, false, List.of(p.getBatchId())));
    }

    /**
     * Folds the batches a change releases (with the group's statistics when it folded) and moves the coverage on; then
     * the batches folded without their group may complete the groups that claim them.
     */
    private void apply(Record<String, Arrival> record, String mc, ModelInfo model, int numLayers, StatsGroups.Change change) {
        if (change == null) {
            return;
        }
        CoverageSnapshot cov = coverage.get(mc);
        if (cov == null) { // a group dropped before any partial of this key: nothing to fold, only to count
            cov = emptyCoverage(model, mc.substring(mc.lastIndexOf('|') + 1), numLayers);
        }
        long tokens = 0;
        long windows = 0;
        for (String batchId : change.release()) {
            long[] tw = foldBatch(mc + "|" + batchId);
            tokens += tw[0];
            windows += tw[1];
        }
        if (change.folded() != null) {
            StatsGroup g = change.folded();
            cov.setStatsTokens(cov.getStatsTokens() + g.tokens);
            cov.setStatsWindows(cov.getStatsWindows() + g.windows);
            cov.setStatsBatches(cov.getStatsBatches() + g.batchIds.size());
            cov.setStatsGroups(cov.getStatsGroups() + 1);
            if (g.withSensitivity()) {
                cov.setStatsSensitivityTokens(cov.getStatsSensitivityTokens() + g.tokens);
            }
        }
        if (change.dropped()) {
            cov.setStatsGroupsDropped(cov.getStatsGroupsDropped() + 1);
        }
        advance(record, mc, model, cov, tokens, windows, change.release().size(), numLayers);
        if (change.folded() == null) {
            for (String batchId : change.release()) {
                apply(record, mc, model, numLayers, stats.afterBatchFolded(mc, batchId, model, done(mc)));
            }
        }
    }

    /** Adds every part of a complete batch to the sums; returns its tokens and windows. */
    private long[] foldBatch(String batchKey) {
        List<String> done = new ArrayList<>();
        long[] tw = new long[2];
        try (KeyValueIterator<String, ImportancePartial> it = pending.prefixScan(batchKey + "|", KEYS)) {
            while (it.hasNext()) {
                KeyValue<String, ImportancePartial> kv = it.next();
                add(batchKey.substring(0, batchKey.lastIndexOf('|')), kv.value);
                tw[0] = kv.value.getTokens();
                tw[1] = kv.value.getWindows();
                done.add(kv.key);
            }
        }
        done.forEach(pending::delete);
        batches.delete(batchKey);
        completed.put(batchKey, tw[0]);
        folded.increment();
        return tw;
    }

    /** The coverage after {@code batches} complete batches were folded; a snapshot, and at a threshold a trigger. */
    private void advance(Record<String, Arrival> record, String mc, ModelInfo model, CoverageSnapshot cov, long tokens, long windows,
                         int batchCount, int numLayers) {
        long before = cov.getTokens();
        cov.setTokens(before + tokens);
        cov.setWindows(cov.getWindows() + windows);
        cov.setBatches(cov.getBatches() + batchCount);
        cov.setPendingBatches(cov.getPendingBatches() - batchCount);
        cov.setUpdatedAtMillis(record.timestamp());
        cov.setLayersComplete(layersComplete(mc, numLayers));
        long threshold = thresholds.crossed(before, cov.getTokens());
        if (threshold >= 0) {
            cov.setVersion(cov.getVersion() + 1);
        }
        coverage.put(mc, cov);
        updateGauges(mc, cov.getTokens());

        if (threshold < 0) {
            context().forward(record.withValue((Output) new Output.Snapshot(cov)));
            return;
        }
        CoverageSnapshot full = withLayers(cov, mc);
        if (cov.getStatsTokens() > 0) { // the version's statistics, in this transaction, before its trigger
            full.setStatsChunks(stats.emit(mc, cov, model, chunk -> context().forward(record.withValue((Output) chunk))));
        }
        long bytes = SnapshotSize.bound(full);
        if (bytes > recordMaxBytes) {
            // a record the broker would refuse must never be sent: the Streams producer would fail the transaction
            // again at every restart. The version is answered FAILED and the next threshold is waited for.
            refused.increment();
            context().forward(record.withValue((Output) new Output.Snapshot(cov)));
            context().forward(record.withValue((Output) new Output.Refused(SnapshotSize.refusal(cov, bytes, recordMaxBytes))));
            return;
        }
        triggers.increment();
        context().forward(record.withValue((Output) new Output.Snapshot(full)));
        context().forward(record.withValue((Output) new Output.Trigger(PruneTrigger.newBuilder()
                .setModel(cov.getModel()).setCriterion(cov.getCriterion()).setVersion(cov.getVersion())
                .setThresholdTokens(threshold).setSnapshot(full).build())));
    }

    private Predicate<String> done(String mc) {
        return batchId -> completed.get(mc + "|" + batchId) != null;
    }

    private ModelInfo model(ModelId id) {
        return models.stream().filter(m -> m.id().equals(id)).findFirst()
                .orElseThrow(() -> new IllegalStateException("validated records are of configured models"));
    }

    private CoverageSnapshot coverage(String mc, ImportancePartial p) {
        CoverageSnapshot cov = coverage.get(mc);
        return cov != null ? cov : emptyCoverage(model(p.getModel()), p.getCriterion(), p.getNumLayers());
    }

    private void add(String modelCriterion, ImportancePartial p) {
        String key = modelCriterion + "|" + p.getLayer() + "|" + p.getStructure();
        double[] total = sums.get(key);
        List<Double> values = p.getValues();
        if (total == null) {
            total = new double[values.size()];
        }
        for (int i = 0; i < total.length; i++) {
            total[i] += values.get(i);
        }
        sums.put(key, total);
    }

    /** Layers that have every part of every batch received so far (pending batches may still lack some). */
    private int layersComplete(String modelCriterion, int numLayers) {
        BitSet missing = new BitSet(numLayers);
        try (KeyValueIterator<String, byte[]> it = batches.prefixScan(modelCriterion + "|", KEYS)) {
            while (it.hasNext()) {
                BitSet received = BitSet.valueOf(it.next().value);
                for (int l = 0; l < numLayers; l++) {
                    if (!received.get(2 * l) || !received.get(2 * l + 1)) {
                        missing.set(l);
                    }
                }
            }
        }
        return numLayers - missing.cardinality();
    }

    /** The coverage with the current sums of every layer. */
    private CoverageSnapshot withLayers(CoverageSnapshot cov, String modelCriterion) {
        List<LayerScores> layers = new ArrayList<>();
        for (int l = 0; l < cov.getNumLayers(); l++) {
            layers.add(new LayerScores(l, boxed(sums.get(modelCriterion + "|" + l + "|" + Structure.MLP)),
                    boxed(sums.get(modelCriterion + "|" + l + "|" + Structure.HEADS))));
        }
        return CoverageSnapshot.newBuilder(cov).setLayers(layers).build();
    }

    private static CoverageSnapshot emptyCoverage(ModelInfo model, String criterion, int numLayers) {
        return CoverageSnapshot.newBuilder().setModel(model.id()).setCriterion(criterion).setVersion(0)
                .setTokens(0).setWindows(0).setBatches(0).setPendingBatches(0).setNumLayers(numLayers)
                .setLayersComplete(0).setLayers(List.of()).setUpdatedAtMillis(0).build();
    }

    /** Tokens aggregated and the next trigger's threshold, per model and criterion, for dashboards. */
    private void updateGauges(String modelCriterion, long tokens) {
        gauge("hfprune_coverage_tokens", modelCriterion).set(tokens);
        gauge("hfprune_coverage_next_trigger_tokens", modelCriterion).set(thresholds.next(tokens));
    }

    private AtomicLong gauge(String name, String modelCriterion) {
        return coverageGauges.computeIfAbsent(name + "|" + modelCriterion, k -> {
            String[] parts = modelCriterion.split("\\|");
            AtomicLong value = new AtomicLong();
            meters.gauge(name, io.micrometer.core.instrument.Tags.of(
                    "model", parts[0].substring(0, parts[0].indexOf('@')), "criterion", parts[1]), value);
            return value;
        });
    }

    static String partKey(String batchKey, int layer, Structure structure) {
        return batchKey + "|" + layer + "|" + structure;
    }

    private static byte[] toBytes(BitSet bits, int parts) {
        return java.util.Arrays.copyOf(bits.toByteArray(), (parts + 7) / 8);
    }

    static List<Double> boxed(double[] v) {
        List<Double> out = new ArrayList<>(v == null ? 0 : v.length);
        if (v != null) {
            for (double d : v) {
                out.add(d);
            }
        }
        return out;
    }
}
