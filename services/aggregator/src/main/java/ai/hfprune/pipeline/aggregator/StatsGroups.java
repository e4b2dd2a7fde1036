package ai.hfprune.pipeline.aggregator;

import ai.hfprune.pipeline.common.GramChunks;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.StatsPartial;
import ai.hfprune.schemas.Structure;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * The Gram statistics side of the aggregation of one task (which holds every key of its models and criteria).
 *
 * <p>A scorer group's chunks wait in {@link #PENDING} until every chunk of every matrix has arrived and every batch
 * of the group is complete in the scores; then the chunks are added to {@link #SUMS} and the group's held batches are
 * folded into the scores in the same step ({@link PartialAggregator}). So the statistics and the scores always stand
 * at the same batches (those of complete groups, plus batches without statistics, which the snapshot shows as
 * {@code statsTokens < tokens}). The sums are kept in this aggregator's own chunk layout ({@code stats.chunk.bytes}):
 * scorers may chunk differently, since a chunk is a contiguous range of the packed triangle ({@link GramChunks}).
 *
 * <p>Why a group that overlaps another is dropped whole: a group's statistics are one sum over its batches, so a batch
 * that is in two groups (a re-sent batch scored again in another transaction) cannot be taken out of the second one.
 * Adding both would count that batch's statistics twice; the first group to arrive (its first chunk claims its batches
 * in {@link #MEMBERS}) keeps them, and a later group with any claimed batch is dropped, counted in
 * {@code statsGroupsDropped}, its held batches folded into the scores alone. Its other batches are then in the scores
 * but not in the statistics, and the snapshot says so ({@code statsTokens < tokens}); the refit, invariant to the scale
 * of G, stays sound on the subset. A group whose chunk was dead-lettered, or whose chunks disagree, is dropped the
 * same way (its claims are released). Every chunk of a folded or dropped group that comes later is a duplicate.
 */
final class StatsGroups {

    private static final Logger LOG = LoggerFactory.getLogger(StatsGroups.class);
    private static final StringSerializer KEYS = new StringSerializer();

    /** model|criterion|layer|structure|chunk → float64 sums of that packed range (this aggregator's layout). */
    static final String SUMS = "stats-sums";
    /** model|criterion|group|layer|structure|chunk → the chunk, until its group is folded or dropped. */
    static final String PENDING = "pending-stats";
    /** model|criterion|group → {@link StatsGroup}. */
    static final String GROUPS = "stats-groups";
    /** model|criterion|batch → the group whose statistics hold the batch (its first claimant). */
    static final String MEMBERS = "stats-members";
    /** model|criterion|group|batch → tokens: batches complete in the scores, waiting for their group. */
    static final String HELD = "held-batches";

    /** What an arrival changed: the group folded (or dropped), and the held batches to fold now. */
    record Change(StatsGroup folded, boolean dropped, List<String> release) {
    }

    private final long chunkBytes;
    private final Map<Integer, List<GramChunks.Rows>> layouts = new HashMap<>();
    private final KeyValueStore<String, double[]> sums;
    private final KeyValueStore<String, StatsPartial> pending;
    private final KeyValueStore<String, StatsGroup> groups;
    private final KeyValueStore<String, String> members;
    private final KeyValueStore<String, Long> held;
    private final Counter folded;
    private final Counter dropped;
    private final Counter duplicates;

    StatsGroups(ProcessorContext<?, ?> context, long chunkBytes, MeterRegistry meters) {
        this.chunkBytes = chunkBytes;
        this.sums = context.getStateStore(SUMS);
        this.pending = context.getStateStore(PENDING);
        this.groups = context.getStateStore(GROUPS);
        this.members = context.getStateStore(MEMBERS);
        this.held = context.getStateStore(HELD);
        this.folded = meters.counter("hfprune_aggregator_stats_groups", "outcome", "folded");
        this.dropped = meters.counter("hfprune_aggregator_stats_groups", "outcome", "dropped");
        this.duplicates = meters.counter("hfprune_aggregator_stats_duplicates_dropped");
    }

    /** Whether a complete batch naming {@code group} must wait for it: the group is neither folded nor dropped yet. */
    boolean holds(String mc, String group) {
        StatsGroup g = groups.get(mc + "|" + group);
        return g == null || g.status == StatsGroup.Status.PENDING;
    }

    void hold(String mc, String group, String batchId, long tokens) {
        held.put(mc + "|" + group + "|" + batchId, tokens);
    }

    Change onChunk(String mc, StatsPartial c, ModelInfo model, Predicate<String> completed) {
        String group = c.getGroupId();
        String key = mc + "|" + group;
        StatsGroup g = groups.get(key);
        if (g == null) {
            for (String b : c.getBatchIds()) {
                String claimant = members.get(mc + "|" + b);
                if (claimant != null) {
                    return drop(mc, group, StatsGroup.droppedMarker(), "batch " + b + " is in group " + claimant + " already");
                }
            }
            g = StatsGroup.pending(c.getTokens(), c.getWindows(), c.getBatchIds(), 2 * model.numLayers());
            for (String b : c.getBatchIds()) {
                members.put(mc + "|" + b, group);
            }
        } else if (g.status != StatsGroup.Status.PENDING) {
            duplicates.increment();
            return null;
        } else if (g.tokens != c.getTokens() || g.windows != c.getWindows() || !g.batchIds.equals(c.getBatchIds())) {
            return drop(mc, group, g, "its chunks disagree on tokens, windows or batches");
        }
        int m = 2 * c.getLayer() + (c.getStructure() == Structure.MLP ? 0 : 1);
        if (g.ends[m] == null) {
            g.starts[m] = new int[c.getChunks()];
            g.ends[m] = new int[c.getChunks()];
        } else if (g.ends[m].length != c.getChunks()) {
            return drop(mc, group, g, "its chunks disagree on the chunks of layer " + c.getLayer() + " " + c.getStructure());
        }
        if (g.received(m, c.getChunk())) {
            duplicates.increment();
            groups.put(key, g); // a new group's claims stand
            return null;
        }
        if (c.getOutputSensitivity().hasRemaining()) {
            g.sensitive++;
        }
        g.starts[m][c.getChunk()] = c.getRowStart();
        g.ends[m][c.getChunk()] = c.getRowEnd();
        c.setBatchIds(List.of()); // the group state has them
        pending.put(key + "|" + c.getLayer() + "|" + c.getStructure() + "|" + c.getChunk(), c);
        groups.put(key, g);
        return tryFold(mc, group, model, completed);
    }

    /** A chunk of {@code group} was dead-lettered. */
    Change onLost(String mc, String group, String reason) {
        StatsGroup g = groups.get(mc + "|" + group);
        if (g == null) {
            return drop(mc, group, StatsGroup.droppedMarker(), "a chunk was dead-lettered: " + reason);
        }
        return g.status == StatsGroup.Status.PENDING ? drop(mc, group, g, "a chunk was dead-lettered: " + reason) : null;
    }

    /** A batch was folded into the scores without its group: the group that claims it may be complete now. */
    Change afterBatchFolded(String mc, String batchId, ModelInfo model, Predicate<String> completed) {
        String group = members.get(mc + "|" + batchId);
        return group == null ? null : tryFold(mc, group, model, completed);
    }

    Change tryFold(String mc, String group, ModelInfo model, Predicate<String> completed) {
        String key = mc + "|" + group;
        StatsGroup g = groups.get(key);
        if (g == null || g.status != StatsGroup.Status.PENDING || !g.allChunks()) {
            return null;
        }
        for (String b : g.batchIds) {
            if (held.get(key + "|" + b) == null && !completed.test(b)) {
                return null; // a batch of the group is not complete in the scores yet
            }
        }
        for (int m = 0; m < g.ends.length; m++) {
            if (!g.tiles(m, model.gramDim(m / 2, m % 2 == 0 ? Structure.MLP : Structure.HEADS))) {
                return drop(mc, group, g, "the rows of its chunks of layer " + m / 2 + " do not cover the matrix once");
            }
        }
        if (g.sensitive != 0 && !g.withSensitivity()) {
            return drop(mc, group, g, "output sensitivities came with " + g.sensitive + " of its " + g.ends.length + " matrices");
        }
        List<String> done = new ArrayList<>();
        try (KeyValueIterator<String, StatsPartial> it = pending.prefixScan(key + "|", KEYS)) {
            while (it.hasNext()) {
                KeyValue<String, StatsPartial> kv = it.next();
                add(mc, kv.value);
                done.add(kv.key);
            }
        }
        done.forEach(pending::delete);
        groups.put(key, g.closed(StatsGroup.Status.FOLDED));
        folded.increment();
        return new Change(g, false, release(key));
    }

    private Change drop(String mc, String group, StatsGroup g, String reason) {
        String key = mc + "|" + group;
        LOG.warn("aggregator: the statistics of group {} of {} are dropped: {}", group, mc, reason);
        List<String> done = new ArrayList<>();
        try (KeyValueIterator<String, StatsPartial> it = pending.prefixScan(key + "|", KEYS)) {
            it.forEachRemaining(kv -> done.add(kv.key));
        }
        done.forEach(pending::delete);
        for (String b : g.batchIds) {
            if (group.equals(members.get(mc + "|" + b))) {
                members.delete(mc + "|" + b);
            }
        }
        groups.put(key, g.closed(StatsGroup.Status.DROPPED));
        dropped.increment();
        return new Change(null, true, release(key));
    }

    /** The batches held for a group, removed from the held store. */
    private List<String> release(String groupKey) {
        List<String> keys = new ArrayList<>();
        try (KeyValueIterator<String, Long> it = held.prefixScan(groupKey + "|", KEYS)) {
            it.forEachRemaining(kv -> keys.add(kv.key));
        }
        keys.forEach(held::delete);
        return keys.stream().map(k -> k.substring(groupKey.length() + 1)).toList();
    }

    /** Where the summed output sensitivities of a layer's structure are kept in {@link #SUMS}. */
    private static String sensitivityKey(String mc, int layer, Structure structure) {
        return mc + "|" + layer + "|" + structure + "|sensitivity";
    }

    /**
     * Adds a chunk into the sums chunks (of this aggregator's layout) that its packed range overlaps, and its output
     * sensitivities, if it carries them, into theirs.
     */
    private void add(String mc, StatsPartial c) {
        if (c.getOutputSensitivity().hasRemaining()) {
            String key = sensitivityKey(mc, c.getLayer(), c.getStructure());
            double[] s = GramChunks.fromBytes(c.getOutputSensitivity());
            double[] total = sums.get(key);
            if (total != null) {
                for (int i = 0; i < s.length; i++) {
                    s[i] += total[i];
                }
            }
            sums.put(key, s);
        }
        int dim = c.getDim();
        double[] values = GramChunks.fromBytes(c.getValues());
        long from = GramChunks.offset(dim, c.getRowStart());
        List<GramChunks.Rows> layout = layout(dim);
        for (int j = 0; j < layout.size(); j++) {
            GramChunks.Rows rows = layout.get(j);
            if (rows.end() <= c.getRowStart() || rows.start() >= c.getRowEnd()) {
                continue;
            }
            String key = mc + "|" + c.getLayer() + "|" + c.getStructure() + "|" + j;
            long targetFrom = GramChunks.offset(dim, rows.start());
            double[] target = sums.get(key);
            if (target == null) {
                target = new double[Math.toIntExact(GramChunks.offset(dim, rows.end()) - targetFrom)];
            }
            GramChunks.addOverlap(values, from, target, targetFrom);
            sums.put(key, target);
        }
    }

    private List<GramChunks.Rows> layout(int dim) {
        return layouts.computeIfAbsent(dim, d -> GramChunks.layout(d, chunkBytes));
    }

    /**
     * The chunks of a version's statistics, for calibration-stats: {@code cov} stands at that version. Each matrix's
     * first chunk carries the summed output sensitivities when every folded group carried them (a sum over only some of
     * the tokens would weigh the layers' errors by a different sample than the Gram matrices).
     */
    int emit(String mc, CoverageSnapshot cov, ModelInfo model, Consumer<Output.Stats> out) {
        boolean withSensitivity = cov.getStatsSensitivityTokens() == cov.getStatsTokens();
        int n = 0;
        for (int l = 0; l < model.numLayers(); l++) {
            for (Structure s : Structure.values()) {
                int dim = model.gramDim(l, s);
                List<GramChunks.Rows> layout = layout(dim);
                for (int j = 0; j < layout.size(); j++) {
                    GramChunks.Rows rows = layout.get(j);
                    double[] values = sums.get(mc + "|" + l + "|" + s + "|" + j);
                    if (values == null) {
                        values = new double[Math.toIntExact(GramChunks.offset(dim, rows.end()) - GramChunks.offset(dim, rows.start()))];
                    }
                    StatsPartial chunk = StatsPartial.newBuilder().setGroupId("").setBatchIds(List.of()).setModel(cov.getModel())
                            .setCriterion(cov.getCriterion()).setVersion(cov.getVersion()).setNumLayers(model.numLayers())
                            .setLayer(l).setStructure(s).setDim(dim).setChunk(j).setChunks(layout.size())
                            .setRowStart(rows.start()).setRowEnd(rows.end()).setTokens(cov.getStatsTokens())
                            .setWindows(cov.getStatsWindows()).setValues(GramChunks.toBytes(values)).setScorerId("")
                            .setOutputSensitivity(j == 0 && withSensitivity
                                    ? GramChunks.toBytes(sums.get(sensitivityKey(mc, l, s))) : ByteBuffer.allocate(0))
                            .build();
                    out.accept(new Output.Stats(Keys.versionStats(cov.getModel(), cov.getCriterion(), cov.getVersion(), l, s, j), chunk));
                    n++;
                }
            }
        }
        return n;
    }

    /** The records {@link #emit} writes for a model. */
    int chunksOf(ModelInfo model) {
        int n = 0;
        for (int l = 0; l < model.numLayers(); l++) {
            for (Structure s : Structure.values()) {
                n += layout(model.gramDim(l, s)).size();
            }
        }
        return n;
    }
}
