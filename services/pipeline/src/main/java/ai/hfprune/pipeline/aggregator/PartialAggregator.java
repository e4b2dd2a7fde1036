package ai.hfprune.pipeline.aggregator;

import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.LayerScores;
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

/**
 * Sums the partials of one model and criterion (all of them reach one task: the stream is keyed by model|criterion).
 *
 * <p>A batch's partials wait in {@link #PENDING} until every layer and structure of the batch has arrived; then all
 * of them are added to {@link #SUMS} in one step. The sums therefore always stand at a set of complete batches, the
 * same for every layer: any snapshot is consistent. A partial whose (batch, layer, structure) was seen before is a
 * duplicate (a scorer retried, a producer re-sent) and is dropped. Everything here runs inside the Streams
 * transaction, so a crash never leaves half a batch summed.
 */
final class PartialAggregator extends ContextualProcessor<String, ImportancePartial, String, Output> {

    /** model|criterion|layer|structure → float64 sums. */
    static final String SUMS = "partial-sums";
    /** model|criterion|batch|layer|structure → the partial, until its batch is complete. */
    static final String PENDING = "pending-partials";
    /** model|criterion|batch → bitset of the parts received, while the batch is pending. */
    static final String BATCHES = "pending-batches";
    /** model|criterion|batch → tokens, once the batch is summed: later copies of its partials are duplicates. */
    static final String COMPLETED = "completed-batches";
    /** model|criterion → coverage (no layer sums). */
    static final String COVERAGE = "coverage";

    private static final StringSerializer KEYS = new StringSerializer();

    private final Thresholds thresholds;
    private final Counter duplicates;
    private final Counter folded;
    private final Counter triggers;
    private final MeterRegistry meters;
    private final Map<String, AtomicLong> coverageGauges;

    private KeyValueStore<String, double[]> sums;
    private KeyValueStore<String, ImportancePartial> pending;
    private KeyValueStore<String, byte[]> batches;
    private KeyValueStore<String, Long> completed;
    private KeyValueStore<String, CoverageSnapshot> coverage;

    PartialAggregator(Thresholds thresholds, MeterRegistry meters, Map<String, AtomicLong> coverageGauges) {
        this.thresholds = thresholds;
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
    }

    @Override
    public void process(Record<String, ImportancePartial> record) {
        String modelCriterion = record.key();
        ImportancePartial p = record.value();
        String batchKey = modelCriterion + "|" + p.getBatchId();
        int parts = 2 * p.getNumLayers();
        int part = 2 * p.getLayer() + (p.getStructure() == Structure.MLP ? 0 : 1);

        byte[] state = batches.get(batchKey);
        BitSet received = state == null ? new BitSet(parts) : BitSet.valueOf(state);
        if (received.get(part) || (state == null && completed.get(batchKey) != null)) {
            duplicates.increment();
            return;
        }
        CoverageSnapshot cov = coverage.get(modelCriterion);
        if (cov == null) {
            cov = emptyCoverage(p);
        }
        if (state == null) {
            cov.setPendingBatches(cov.getPendingBatches() + 1);
        }
        received.set(part);
        if (received.cardinality() < parts) {
            pending.put(partKey(batchKey, p.getLayer(), p.getStructure()), p);
            batches.put(batchKey, toBytes(received, parts));
            coverage.put(modelCriterion, cov);
            return;
        }

        // The last part of the batch: fold every part into the sums at once.
        add(modelCriterion, p);
        List<String> done = new ArrayList<>();
        try (KeyValueIterator<String, ImportancePartial> it = pending.prefixScan(batchKey + "|", KEYS)) {
            while (it.hasNext()) {
                KeyValue<String, ImportancePartial> kv = it.next();
                add(modelCriterion, kv.value);
                done.add(kv.key);
            }
        }
        done.forEach(pending::delete);
        batches.delete(batchKey);
        completed.put(batchKey, p.getTokens());
        folded.increment();

        long before = cov.getTokens();
        cov.setTokens(before + p.getTokens());
        cov.setWindows(cov.getWindows() + p.getWindows());
        cov.setBatches(cov.getBatches() + 1);
        cov.setPendingBatches(cov.getPendingBatches() - 1);
        cov.setUpdatedAtMillis(record.timestamp());
        cov.setLayersComplete(layersComplete(modelCriterion, p.getNumLayers()));
        long threshold = thresholds.crossed(before, cov.getTokens());
        if (threshold >= 0) {
            cov.setVersion(cov.getVersion() + 1);
        }
        coverage.put(modelCriterion, cov);
        updateGauges(modelCriterion, cov.getTokens());

        if (threshold >= 0) {
            CoverageSnapshot full = withLayers(cov, modelCriterion);
            triggers.increment();
            context().forward(record.withValue((Output) new Output.Snapshot(full)));
            context().forward(record.withValue((Output) new Output.Trigger(PruneTrigger.newBuilder()
                    .setModel(p.getModel()).setCriterion(p.getCriterion()).setVersion(cov.getVersion())
                    .setThresholdTokens(threshold).setSnapshot(full).build())));
        } else {
            context().forward(record.withValue((Output) new Output.Snapshot(cov)));
        }
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

    private static CoverageSnapshot emptyCoverage(ImportancePartial p) {
        return CoverageSnapshot.newBuilder().setModel(p.getModel()).setCriterion(p.getCriterion()).setVersion(0)
                .setTokens(0).setWindows(0).setBatches(0).setPendingBatches(0).setNumLayers(p.getNumLayers())
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
