package ai.hfprune.pipeline.aggregator;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.pipeline.common.GramChunks;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.schemas.StatsPartial;
import io.micrometer.core.instrument.Counter;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.streams.processor.api.ContextualProcessor;
import org.apache.kafka.streams.processor.api.Record;

import java.util.HashSet;
import java.util.List;

/**
 * Checks each raw stats chunk before it can touch any sum: Avro in the wire format with a known schema, the configured
 * model, a known criterion, the key model|criterion, a layer of the model, the side of that layer's Gram matrix, chunk
 * bounds inside it, a value for every packed element, finite values with a non-negative diagonal, output sensitivities
 * (if any) only in a matrix's first chunk, one finite non-negative value per hidden dimension, and a group id, batch
 * ids, tokens and windows. Invalid records leave with their reason and origin in dead-letter headers; when the
 * chunk's group can be named, a {@link Validated.LostChunk} follows, so the aggregator drops that group (which could
 * never be complete) instead of holding its batches.
 */
final class StatsValidator extends ContextualProcessor<String, byte[], String, Validated> {

    private final Deserializer<StatsPartial> deserializer;
    private final String topic;
    private final List<ModelInfo> models;
    private final Counter deadLetters;

    StatsValidator(Deserializer<StatsPartial> deserializer, String topic, List<ModelInfo> models, Counter deadLetters) {
        this.deserializer = deserializer;
        this.topic = topic;
        this.models = models;
        this.deadLetters = deadLetters;
    }

    @Override
    public void process(Record<String, byte[]> record) {
        String reason;
        StatsPartial chunk = null;
        try {
            chunk = deserializer.deserialize(topic, record.value());
            reason = record.value() == null ? "empty value" : problem(record.key(), chunk);
        } catch (SerializationException e) {
            reason = e.getMessage();
        }
        if (reason == null) {
            context().forward(record.withValue(new Validated.ValidChunk(chunk)));
            return;
        }
        Validated.forwardInvalid(context(), record, reason, deadLetters);
        if (chunk != null && routable(record.key(), chunk)) {
            context().forward(new Record<>(record.key(), (Validated) new Validated.LostChunk(chunk.getModel(), chunk.getGroupId(), reason),
                    record.timestamp()));
        }
    }

    /** Whether a bad chunk still names a group of a model and criterion this aggregator holds, under the right key. */
    private boolean routable(String key, StatsPartial c) {
        return models.stream().anyMatch(m -> m.id().equals(c.getModel())) && wellFormedId(c.getGroupId())
                && Keys.modelCriterion(c.getModel(), c.getCriterion()).equals(key) && knownCriterion(c.getCriterion());
    }

    /** Why the chunk cannot be summed, or null. */
    private String problem(String key, StatsPartial c) {
        ModelInfo model = models.stream().filter(m -> m.id().equals(c.getModel())).findFirst().orElse(null);
        if (model == null) {
            return "model " + Keys.model(c.getModel()) + " is not a configured model";
        }
        if (!knownCriterion(c.getCriterion())) {
            return "unknown criterion '" + c.getCriterion() + "'";
        }
        String expectedKey = Keys.modelCriterion(c.getModel(), c.getCriterion());
        if (!expectedKey.equals(key)) {
            return "key '" + key + "' does not match the record (" + expectedKey + ")";
        }
        if (c.getNumLayers() != model.numLayers() || c.getLayer() < 0 || c.getLayer() >= model.numLayers()) {
            return "layer " + c.getLayer() + " of " + c.getNumLayers() + " does not fit the model's " + model.numLayers() + " layers";
        }
        int dim = model.gramDim(c.getLayer(), c.getStructure());
        if (c.getDim() != dim) {
            return "Gram matrix of side " + c.getDim() + " for layer " + c.getLayer() + " " + c.getStructure() + ", the model's is " + dim;
        }
        if (c.getChunks() < 1 || c.getChunk() < 0 || c.getChunk() >= c.getChunks() || c.getRowStart() < 0
                || c.getRowEnd() <= c.getRowStart() || c.getRowEnd() > dim || c.getChunks() > dim) {
            return "chunk " + c.getChunk() + " of " + c.getChunks() + " with rows " + c.getRowStart() + ".." + c.getRowEnd()
                    + " does not fit a matrix of side " + dim;
        }
        long expectedValues = GramChunks.offset(dim, c.getRowEnd()) - GramChunks.offset(dim, c.getRowStart());
        if (c.getValues().remaining() != 8 * expectedValues) {
            return "chunk of " + c.getValues().remaining() + " bytes for rows " + c.getRowStart() + ".." + c.getRowEnd()
                    + ", which need " + 8 * expectedValues + " (float64 upper triangle)";
        }
        double[] values = GramChunks.fromBytes(c.getValues());
        for (int i = 0; i < values.length; i++) {
            if (!Double.isFinite(values[i])) {
                return "value " + values[i] + " at index " + i + " is not finite";
            }
        }
        if (!GramChunks.diagonalNonNegative(values, dim, c.getRowStart(), c.getRowEnd())) {
            return "a diagonal element is negative (a Gram matrix's diagonal is a sum of squares)";
        }
        String sensitivity = sensitivityProblem(c, model);
        if (sensitivity != null) {
            return sensitivity;
        }
        if (!wellFormedId(c.getGroupId()) || c.getBatchIds().isEmpty() || c.getTokens() <= 0 || c.getWindows() <= 0) {
            return "group id, batch ids, windows and tokens must be set (got '" + c.getGroupId() + "', " + c.getBatchIds().size()
                    + " batch ids, " + c.getWindows() + ", " + c.getTokens() + ")";
        }
        if (c.getBatchIds().stream().anyMatch(b -> !wellFormedId(b)) || new HashSet<>(c.getBatchIds()).size() != c.getBatchIds().size()) {
            return "batch ids must be distinct, non-empty and without '|'";
        }
        return null;
    }

    /** Why the chunk's output sensitivities cannot be summed, or null (none, or a sound vector in a first chunk). */
    private static String sensitivityProblem(StatsPartial c, ModelInfo model) {
        int bytes = c.getOutputSensitivity().remaining();
        if (bytes == 0) {
            return null;
        }
        if (c.getRowStart() != 0) {
            return "output sensitivities in a chunk whose rows start at " + c.getRowStart() + " (only a matrix's first chunk carries them)";
        }
        if (bytes != 8 * model.hiddenSize()) {
            return "output sensitivities of " + bytes + " bytes, the model's hidden size " + model.hiddenSize() + " needs "
                    + 8 * model.hiddenSize() + " (float64)";
        }
        double[] s = GramChunks.fromBytes(c.getOutputSensitivity());
        for (int i = 0; i < s.length; i++) {
            if (!(s[i] >= 0) || !Double.isFinite(s[i])) {
                return "output sensitivity " + s[i] + " at index " + i + " is not a finite sum of squares";
            }
        }
        return null;
    }

    private static boolean knownCriterion(String criterion) {
        try {
            Criterion.parse(criterion);
            return true;
        } catch (HfpruneException e) {
            return false;
        }
    }

    private static boolean wellFormedId(String id) {
        return !id.isEmpty() && !id.contains("|");
    }
}
