package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.Structure;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.Serializer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Sends one batch's scores as {@link ImportancePartial}s on {@link Topics#importancePartials}, into the producer's open
 * transaction: for every criterion, every layer, one record per structure (MLP neurons, query heads), keyed
 * {@link Keys#partial}.
 */
final class PartialsSender {

    /** Called after each partial is handed to the producer (a test's crash point). */
    interface AfterPartial {
        void sent(long partialsSentInTotal);
    }

    private final Topics topics;
    private final ModelInfo model;
    private final String instanceId;
    private final Serializer<ImportancePartial> serializer;
    private final AtomicLong partialsSent = new AtomicLong();

    PartialsSender(Topics topics, ModelInfo model, String instanceId) {
        this.topics = topics;
        this.model = model;
        this.instanceId = instanceId;
        this.serializer = topics.importancePartials.valueSerde().serializer();
    }

    /** Partials sent, in committed transactions or not. */
    long partialsSent() {
        return partialsSent.get();
    }

    /** Sends the partials of {@code scores}; returns how many. */
    int send(Producer<byte[], byte[]> producer, TokenBatchValidator.Valid valid, Map<Criterion, Partial> scores, String statsGroup,
             AfterPartial afterPartial) {
        int sent = 0;
        for (Map.Entry<Criterion, Partial> e : scores.entrySet()) {
            for (int layer = 0; layer < model.numLayers(); layer++) {
                for (Structure structure : Structure.values()) {
                    sendPartial(producer, valid, e.getKey(), e.getValue(), layer, structure, statsGroup, afterPartial);
                    sent++;
                }
            }
        }
        return sent;
    }

    private void sendPartial(Producer<byte[], byte[]> producer, TokenBatchValidator.Valid valid, Criterion criterion, Partial partial,
                             int layer, Structure structure, String statsGroup, AfterPartial afterPartial) {
        double[] values = structure == Structure.MLP ? partial.mlp()[layer] : partial.heads()[layer];
        List<Double> boxed = new ArrayList<>(values.length);
        for (double v : values) {
            boxed.add(v);
        }
        ImportancePartial p = ImportancePartial.newBuilder()
                .setBatchId(valid.batch().getBatchId())
                .setModel(model.id())
                .setCriterion(criterion.id())
                .setLayer(layer)
                .setNumLayers(model.numLayers())
                .setStructure(structure)
                .setWindows(partial.windows())
                .setTokens(partial.tokens())
                .setValues(boxed)
                .setScorerId(instanceId)
                .setStatsGroup(statsGroup)
                .build();
        String topic = topics.importancePartials.name();
        byte[] key = Keys.partial(model.id(), criterion.id(), layer, structure).getBytes(StandardCharsets.UTF_8);
        producer.send(new ProducerRecord<>(topic, key, serializer.serialize(topic, p)));
        afterPartial.sent(partialsSent.incrementAndGet());
    }
}
