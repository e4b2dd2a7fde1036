package ai.hfprune.pipeline.pruner;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.pipeline.common.Clients;
import ai.hfprune.pipeline.common.GramChunks;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.PruneTrigger;
import ai.hfprune.schemas.StatsPartial;
import ai.hfprune.schemas.Structure;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SerializationException;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Assembles the Gram statistics of a trigger's version from calibration-stats: the aggregator wrote them in the
 * trigger's transaction, all of a model|criterion in one partition ({@link Topics#statsPartition}) after those of the
 * versions before. Once the trigger is visible ({@code read_committed}) the transaction is decided, but its commit
 * marker reaches each partition on its own: the chunks become visible (the partition's last stable offset passes them)
 * moments after the trigger. The partition is read from where the previous version began (the start of the log at
 * first) until every chunk of the version is in hand; a later version, the end of the partition with nothing new for
 * {@link #GRACE}, or {@code pruner.stats.timeout.ms} first is an error that names what is missing: never a hang.
 */
public final class StatsReader {

    /** How long the end of the partition must stay put before the version counts as incomplete. */
    static final Duration GRACE = Duration.ofSeconds(5);

    private final String bootstrap;
    private final Topics topics;
    private final ModelInfo model;
    private final long timeoutMillis;
    /** Per partition: where the last version read began. */
    private final Map<TopicPartition, Long> from = new HashMap<>();

    public StatsReader(String bootstrap, Topics topics, ModelInfo model, long timeoutMillis) {
        this.bootstrap = bootstrap;
        this.topics = topics;
        this.model = model;
        this.timeoutMillis = timeoutMillis;
    }

    public GramStats read(PruneTrigger trigger) {
        CoverageSnapshot s = trigger.getSnapshot();
        int version = trigger.getVersion();
        if (s.getStatsChunks() <= 0 || s.getStatsTokens() <= 0) {
            throw new HfpruneException("version " + version + " has no calibration statistics (statsTokens " + s.getStatsTokens()
                    + ", statsChunks " + s.getStatsChunks() + "): the scorers ran without prune.compensate=lstsq, or every stats"
                    + " group was dropped (statsGroupsDropped " + s.getStatsGroupsDropped() + ")");
        }
        String mc = Keys.modelCriterion(trigger.getModel(), trigger.getCriterion());
        String topic = topics.calibrationStats.name();
        Map<String, StatsPartial> chunks = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> consumer = Clients.reader(bootstrap)) {
            TopicPartition tp = new TopicPartition(topic, Topics.statsPartition(mc, consumer.partitionsFor(topic).size()));
            consumer.assign(List.of(tp));
            Long start = from.get(tp);
            if (start == null) {
                consumer.seekToBeginning(List.of(tp));
            } else {
                consumer.seek(tp, start);
            }
            long end = consumer.endOffsets(List.of(tp)).get(tp); // read_committed: the last stable offset
            long deadline = System.nanoTime() + Duration.ofMillis(timeoutMillis).toNanos();
            long progress = System.nanoTime();
            boolean later = false;
            long firstOfVersion = -1;
            while (chunks.size() < s.getStatsChunks() && !later && System.nanoTime() < deadline) {
                if (consumer.position(tp) >= end) {
                    long now = consumer.endOffsets(List.of(tp)).get(tp);
                    if (now > end) {
                        end = now;
                        progress = System.nanoTime();
                    } else if (System.nanoTime() - progress > GRACE.toNanos()) {
                        break;
                    }
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    progress = System.nanoTime();
                    if (r.key() == null || !new String(r.key(), StandardCharsets.UTF_8).startsWith(mc + "|")) {
                        continue; // another model|criterion that hashes to this partition
                    }
                    StatsPartial chunk;
                    try {
                        chunk = topics.calibrationStats.valueSerde().deserializer().deserialize(topic, r.value());
                    } catch (SerializationException e) {
                        throw new HfpruneException("an unreadable record at " + tp + "@" + r.offset() + ": " + e.getMessage(), e);
                    }
                    if (chunk.getVersion() > version) {
                        later = true;
                        break;
                    }
                    if (chunk.getVersion() == version) {
                        if (firstOfVersion < 0) {
                            firstOfVersion = r.offset();
                        }
                        chunks.put(chunk.getLayer() + "|" + chunk.getStructure() + "|" + chunk.getChunk(), chunk);
                        if (chunks.size() == s.getStatsChunks()) {
                            break;
                        }
                    }
                }
            }
            if (firstOfVersion >= 0) {
                from.put(tp, firstOfVersion);
            }
            if (chunks.size() < s.getStatsChunks()) {
                throw new HfpruneException("the calibration statistics of version " + version + " are incomplete: " + chunks.size()
                        + " of " + s.getStatsChunks() + " chunks on " + tp + (later ? " before a later version's"
                        : consumer.position(tp) >= end ? " up to its end (offset " + end + ")" : " within pruner.stats.timeout.ms"));
            }
        }
        return assemble(chunks, s, version);
    }

    /**
     * The full symmetric matrices from the packed chunks, each matrix checked to be covered exactly once, with the
     * output sensitivities when the version carries them (on every matrix's first chunk, or on none).
     */
    private GramStats assemble(Map<String, StatsPartial> chunks, CoverageSnapshot s, int version) {
        int layers = model.numLayers();
        double[][] mlp = new double[layers][];
        double[][] attn = new double[layers][];
        int[][] rows = new int[2 * layers][];
        double[][] mlpSensitivity = new double[layers][];
        double[][] attnSensitivity = new double[layers][];
        int sensitive = 0;
        for (StatsPartial c : chunks.values()) {
            int l = c.getLayer();
            int dim = l < layers ? model.gramDim(l, c.getStructure()) : -1;
            if (dim != c.getDim() || c.getNumLayers() != layers || c.getTokens() != s.getStatsTokens()) {
                throw new HfpruneException("a chunk of version " + version + " (layer " + l + " " + c.getStructure() + ", side "
                        + c.getDim() + ", " + c.getTokens() + " tokens) does not fit the model or the trigger ("
                        + s.getStatsTokens() + " tokens)");
            }
            double[][] target = c.getStructure() == Structure.MLP ? mlp : attn;
            if (target[l] == null) {
                target[l] = new double[dim * dim];
            }
            GramChunks.unpack(GramChunks.fromBytes(c.getValues()), dim, c.getRowStart(), c.getRowEnd(), target[l]);
            if (c.getOutputSensitivity().hasRemaining()) {
                (c.getStructure() == Structure.MLP ? mlpSensitivity : attnSensitivity)[l] = GramChunks.fromBytes(c.getOutputSensitivity());
                sensitive++;
            }
            int m = 2 * l + (c.getStructure() == Structure.MLP ? 0 : 1);
            if (rows[m] == null) {
                rows[m] = new int[1];
            }
            rows[m][0] += c.getRowEnd() - c.getRowStart();
        }
        for (int l = 0; l < layers; l++) {
            for (Structure st : Structure.values()) {
                int m = 2 * l + (st == Structure.MLP ? 0 : 1);
                if (rows[m] == null || rows[m][0] != model.gramDim(l, st)) {
                    throw new HfpruneException("the calibration statistics of version " + version + " do not cover layer " + l + " " + st
                            + " (" + (rows[m] == null ? 0 : rows[m][0]) + " of " + model.gramDim(l, st) + " rows)");
                }
            }
        }
        if (sensitive == 0) {
            return new GramStats(s.getStatsTokens(), s.getStatsWindows(), mlp, attn);
        }
        if (sensitive != 2 * layers) {
            throw new HfpruneException("the calibration statistics of version " + version + " carry output sensitivities for "
                    + sensitive + " of their " + 2 * layers + " matrices");
        }
        return new GramStats(s.getStatsTokens(), s.getStatsWindows(), mlp, attn, mlpSensitivity, attnSensitivity);
    }
}
