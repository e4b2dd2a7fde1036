package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.pipeline.common.GramChunks;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.schemas.StatsPartial;
import ai.hfprune.schemas.Structure;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.Serializer;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;

/**
 * Sends the Gram statistics of one scorer group (the batches of one transaction) as {@link StatsPartial} chunks on
 * {@link Topics#statsPartials}, into the producer's open transaction: per criterion of the group, per layer, per
 * structure, the packed upper triangle cut into chunks of at most {@code stats.chunk.bytes} ({@link GramChunks}).
 * When the group was scored with a gradient criterion, each matrix's first chunk also carries the structure's output
 * sensitivities (a hidden-size vector), which the pruner's OBS selection weighs the output errors by.
 * Records are built one at a time, so a large model's group never exists twice in memory.
 */
final class StatsSender {

    /** Called after each chunk is handed to the producer (a test's crash point). */
    interface AfterChunk {
        void sent(long chunksSentInTotal);
    }

    private final Topics topics;
    private final ModelInfo model;
    private final String instanceId;
    private final long chunkBytes;
    private final Serializer<StatsPartial> serializer;
    private final Counter bytes;
    private final Counter groups;
    private long chunksSent;

    StatsSender(Topics topics, ModelInfo model, String instanceId, long chunkBytes, MeterRegistry meters) {
        this.topics = topics;
        this.model = model;
        this.instanceId = instanceId;
        this.chunkBytes = chunkBytes;
        this.serializer = topics.statsPartials.valueSerde().serializer();
        this.bytes = Counter.builder("hfprune_scorer_stats_bytes").description("bytes of Gram statistics values committed")
                .baseUnit("bytes").tag("instance", instanceId).register(meters);
        this.groups = Counter.builder("hfprune_scorer_stats_groups").description("stats groups (transactions with statistics) committed")
                .tag("instance", instanceId).register(meters);
    }

    /** The group id: sha256 of the model and the batch ids in order, so an identical re-send is recognised chunk by chunk. */
    static String groupId(ModelInfo model, List<String> batchIds) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(model.key().getBytes(StandardCharsets.UTF_8));
            for (String id : batchIds) {
                sha.update((byte) '\n');
                sha.update(id.getBytes(StandardCharsets.UTF_8));
            }
            return HexFormat.of().formatHex(sha.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Sends every chunk of {@code stats} for each criterion into the open transaction of {@code producer}.
     *
     * @return the bytes of values sent (counted in the meter once {@link #committed} is called)
     */
    long send(Producer<byte[], byte[]> producer, String groupId, List<String> batchIds, Set<Criterion> criteria, GramStats stats,
              AfterChunk afterChunk) {
        String topic = topics.statsPartials.name();
        long valueBytes = 0;
        for (Criterion criterion : criteria) {
            byte[] key = Keys.modelCriterion(model.id(), criterion.id()).getBytes(StandardCharsets.UTF_8);
            for (int layer = 0; layer < stats.numLayers(); layer++) {
                for (Structure structure : Structure.values()) {
                    boolean mlp = structure == Structure.MLP;
                    double[] full = mlp ? stats.mlp()[layer] : stats.attn()[layer];
                    ByteBuffer sensitivity = !stats.hasSensitivity() ? ByteBuffer.allocate(0)
                            : GramChunks.toBytes(mlp ? stats.mlpOutputSensitivity()[layer] : stats.attnOutputSensitivity()[layer]);
                    int dim = structure == Structure.MLP ? stats.mlpDim(layer) : stats.attnDim(layer);
                    List<GramChunks.Rows> layout = GramChunks.layout(dim, chunkBytes);
                    for (int c = 0; c < layout.size(); c++) {
                        GramChunks.Rows rows = layout.get(c);
                        double[] packed = GramChunks.pack(full, dim, rows.start(), rows.end());
                        StatsPartial chunk = StatsPartial.newBuilder()
                                .setGroupId(groupId).setBatchIds(batchIds).setModel(model.id()).setCriterion(criterion.id())
                                .setVersion(0).setNumLayers(stats.numLayers()).setLayer(layer).setStructure(structure)
                                .setDim(dim).setChunk(c).setChunks(layout.size()).setRowStart(rows.start()).setRowEnd(rows.end())
                                .setTokens(stats.tokens()).setWindows(stats.windows())
                                .setValues(GramChunks.toBytes(packed)).setScorerId(instanceId)
                                .setOutputSensitivity(c == 0 ? sensitivity : ByteBuffer.allocate(0))
                                .build();
                        producer.send(new ProducerRecord<>(topic, key, serializer.serialize(topic, chunk)));
                        valueBytes += 8L * packed.length + (c == 0 ? sensitivity.remaining() : 0);
                        afterChunk.sent(++chunksSent);
                    }
                }
            }
        }
        return valueBytes;
    }

    /** Meters, once the transaction that carried a group's statistics has committed. */
    void committed(long valueBytes) {
        bytes.increment(valueBytes);
        groups.increment();
    }
}
