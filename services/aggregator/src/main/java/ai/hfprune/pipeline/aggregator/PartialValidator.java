package ai.hfprune.pipeline.aggregator;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.schemas.ImportancePartial;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.streams.processor.api.ContextualProcessor;
import org.apache.kafka.streams.processor.api.Record;

import java.util.List;

/**
 * Checks each raw partial before it can touch any sum: Avro in the wire format with a known schema, the configured
 * model, a known criterion, a layer and structure of that model, a vector of the right length, finite and ≥ 0.
 * Invalid records leave with their reason and origin in dead-letter headers.
 */
final class PartialValidator extends ContextualProcessor<String, byte[], String, Validated> {

    private final Deserializer<ImportancePartial> deserializer;
    private final String topic;
    private final List<ModelInfo> models;
    private final io.micrometer.core.instrument.Counter deadLetters;

    PartialValidator(Deserializer<ImportancePartial> deserializer, String topic, List<ModelInfo> models,
                     io.micrometer.core.instrument.Counter deadLetters) {
        this.deserializer = deserializer;
        this.topic = topic;
        this.models = models;
        this.deadLetters = deadLetters;
    }

    @Override
    public void process(Record<String, byte[]> record) {
        String reason;
        ImportancePartial partial = null;
        try {
            partial = deserializer.deserialize(topic, record.value());
            reason = record.value() == null ? "empty value" : problem(record.key(), partial);
        } catch (SerializationException e) {
            reason = e.getMessage();
        }
        if (reason == null) {
            context().forward(record.withValue(new Validated.Valid(partial)));
        } else {
            Validated.forwardInvalid(context(), record, reason, deadLetters);
        }
    }

    /** Why the partial cannot be summed, or null. */
    private String problem(String key, ImportancePartial p) {
        ModelInfo model = models.stream().filter(m -> m.id().equals(p.getModel())).findFirst().orElse(null);
        if (model == null) {
            return "model " + Keys.model(p.getModel()) + " is not a configured model";
        }
        try {
            Criterion.parse(p.getCriterion());
        } catch (HfpruneException e) {
            return e.getMessage();
        }
        if (p.getNumLayers() != model.numLayers() || p.getLayer() < 0 || p.getLayer() >= model.numLayers()) {
            return "layer " + p.getLayer() + " of " + p.getNumLayers() + " does not fit the model's " + model.numLayers() + " layers";
        }
        String expectedKey = Keys.partial(p.getModel(), p.getCriterion(), p.getLayer(), p.getStructure());
        if (!expectedKey.equals(key)) {
            return "key '" + key + "' does not match the record (" + expectedKey + ")";
        }
        int width = model.width(p.getLayer(), p.getStructure());
        if (p.getValues().size() != width) {
            return "vector of " + p.getValues().size() + " values for layer " + p.getLayer() + " " + p.getStructure()
                    + ", the model has " + width;
        }
        for (int i = 0; i < width; i++) {
            double v = p.getValues().get(i);
            if (!Double.isFinite(v) || v < 0) {
                return "value " + v + " at index " + i + " is not a finite non-negative number";
            }
        }
        if (p.getWindows() <= 0 || p.getTokens() <= 0 || p.getBatchId().isEmpty() || p.getBatchId().contains("|")) {
            return "batch id, windows and tokens must be set (got '" + p.getBatchId() + "', " + p.getWindows() + ", "
                    + p.getTokens() + ")";
        }
        return null;
    }
}
