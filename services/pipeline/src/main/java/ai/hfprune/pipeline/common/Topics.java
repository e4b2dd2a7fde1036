package ai.hfprune.pipeline.common;

import ai.hfprune.pipeline.serde.AvroSerde;
import ai.hfprune.pipeline.serde.SchemaRegistry;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneTrigger;
import ai.hfprune.schemas.StatsPartial;
import ai.hfprune.schemas.TokenBatch;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;

/** The pipeline's topics, each with its key and value serdes: the one place that names them. */
public final class Topics {

    /** A topic with its serdes. */
    public record Topic<K, V>(String name, Serde<K> keySerde, Serde<V> valueSerde, Map<String, String> configs) {
    }

    /** Score snapshots of large models exceed Kafka's default 1 MB record limit. */
    public static final int MAX_RECORD_BYTES = 64 * 1024 * 1024;

    /** Raw text documents for the sampler's follow mode. Key: any (ignored); value: UTF-8 text. */
    public final Topic<String, String> rawText;
    /** Key: batch id. */
    public final Topic<String, TokenBatch> calibrationBatches;
    /** Key: model|criterion|layer|structure. */
    public final Topic<String, ImportancePartial> importancePartials;
    /**
     * Chunks of the Gram statistics of scorer groups ({@link GramChunks}). Key: model|criterion, so that every chunk of a
     * model and criterion lands on the partition that the aggregator's re-keyed partials of that key use (the topic must
     * have as many partitions as importance-partials): no repartition copy of the largest records of the pipeline.
     */
    public final Topic<String, StatsPartial> statsPartials;
    /**
     * A version's summed statistics, written in the trigger's transaction. Key: model|criterion|version|layer|structure|chunk
     * ({@link Keys#versionStats}); partitioned by the model|criterion part ({@link #statsPartition}), so a version's
     * chunks lie in one partition, in order, after those of earlier versions.
     */
    public final Topic<String, StatsPartial> calibrationStats;
    /** Compacted. Key: model|criterion. */
    public final Topic<String, CoverageSnapshot> coverage;
    /** Key: model|criterion. */
    public final Topic<String, PruneTrigger> pruneTriggers;
    /** Key: model|criterion. */
    public final Topic<String, PruneResult> pruneResults;
    /** Records no service could use, as they came, with the reason in headers. */
    public final Topic<byte[], byte[]> deadLetters;

    public Topics(String prefix, SchemaRegistry registry) {
        Map<String, String> large = Map.of("max.message.bytes", String.valueOf(MAX_RECORD_BYTES));
        rawText = new Topic<>(prefix + "raw-text", Serdes.String(), Serdes.String(), Map.of());
        calibrationBatches = new Topic<>(prefix + "calibration-batches", Serdes.String(),
                new AvroSerde<>(TokenBatch.class, registry), large);
        importancePartials = new Topic<>(prefix + "importance-partials", Serdes.String(),
                new AvroSerde<>(ImportancePartial.class, registry), large);
        statsPartials = new Topic<>(prefix + "stats-partials", Serdes.String(), new AvroSerde<>(StatsPartial.class, registry), large);
        calibrationStats = new Topic<>(prefix + "calibration-stats", Serdes.String(), new AvroSerde<>(StatsPartial.class, registry), large);
        coverage = new Topic<>(prefix + "coverage", Serdes.String(), new AvroSerde<>(CoverageSnapshot.class, registry),
                Map.of("cleanup.policy", "compact", "max.message.bytes", String.valueOf(MAX_RECORD_BYTES)));
        pruneTriggers = new Topic<>(prefix + "prune-triggers", Serdes.String(),
                new AvroSerde<>(PruneTrigger.class, registry), large);
        pruneResults = new Topic<>(prefix + "prune-results", Serdes.String(), new AvroSerde<>(PruneResult.class, registry), Map.of());
        deadLetters = new Topic<>(prefix + "dead-letters", Serdes.ByteArray(), Serdes.ByteArray(), large);
    }

    public static Topics of(PipelineConfig config) {
        return new Topics(config.get("topic.prefix"), SchemaRegistry.forUrl(config.get("schema.registry.url")));
    }

    public List<Topic<?, ?>> all() {
        return List.of(rawText, calibrationBatches, importancePartials, statsPartials, calibrationStats, coverage, pruneTriggers,
                pruneResults, deadLetters);
    }

    /** The partition of calibration-stats that holds the versions of model|criterion: as a producer places that key. */
    public static int statsPartition(String modelCriterion, int partitions) {
        return org.apache.kafka.common.utils.Utils.toPositive(
                org.apache.kafka.common.utils.Utils.murmur2(modelCriterion.getBytes(java.nio.charset.StandardCharsets.UTF_8))) % partitions;
    }

    /** Creates the topics that do not exist yet; existing ones are left as they are. */
    public void createAll(Admin admin, int partitions, short replication) {
        for (Topic<?, ?> topic : all()) {
            NewTopic t = new NewTopic(topic.name(), partitions, replication).configs(topic.configs());
            try {
                admin.createTopics(List.of(t)).all().get();
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw new IllegalStateException("cannot create topic " + topic.name() + ": " + e.getCause().getMessage(), e);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while creating topics", e);
            }
        }
    }
}
