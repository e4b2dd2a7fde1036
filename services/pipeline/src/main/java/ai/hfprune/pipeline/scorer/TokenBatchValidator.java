package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.TokenBatch;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;

import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * Checks a raw {@link TokenBatch} before a scorer spends a forward pass on it: Avro in the wire format with a known
 * schema, the configured model, known criteria, T equal to {@code seq.len}, at least one window, every window of
 * exactly T token ids, every id in the vocabulary, and a batch id the aggregator accepts. Anything else is a dead
 * letter, with the reason this class gives.
 */
public final class TokenBatchValidator {

    /** The outcome of a check. */
    public sealed interface Result {
    }

    /**
     * @param windows  the token ids
     * @param criteria the batch's criteria that this scorer computes (empty: none of them; the batch is not for it)
     */
    public record Valid(TokenBatch batch, int[][] windows, EnumSet<Criterion> criteria) implements Result {
    }

    public record Invalid(String reason) implements Result {
    }

    private final Deserializer<TokenBatch> deserializer;
    private final String topic;
    private final ModelId model;
    private final int vocabSize;
    private final int seqLen;
    private final Set<Criterion> configured;

    /**
     * @param configured the criteria this scorer computes ({@code criteria})
     */
    public TokenBatchValidator(Deserializer<TokenBatch> deserializer, String topic, ModelId model, int vocabSize, int seqLen,
                               Set<Criterion> configured) {
        this.deserializer = deserializer;
        this.topic = topic;
        this.model = model;
        this.vocabSize = vocabSize;
        this.seqLen = seqLen;
        this.configured = EnumSet.copyOf(configured);
    }

    public Result check(byte[] value) {
        if (value == null) {
            return new Invalid("empty value (tombstone)");
        }
        TokenBatch batch;
        try {
            batch = deserializer.deserialize(topic, value);
        } catch (SerializationException e) {
            return new Invalid(e.getMessage());
        }
        return check(batch);
    }

    public Result check(TokenBatch batch) {
        if (!model.equals(batch.getModel())) {
            return new Invalid("model " + Keys.model(batch.getModel()) + " is not the configured model " + Keys.model(model));
        }
        String id = batch.getBatchId();
        if (id == null || id.isBlank() || id.contains("|")) {
            return new Invalid("batch id '" + id + "' is empty or contains '|'");
        }
        if (batch.getCriteria().isEmpty()) {
            return new Invalid("the batch names no criteria");
        }
        EnumSet<Criterion> criteria = EnumSet.noneOf(Criterion.class);
        for (String c : batch.getCriteria()) {
            Criterion parsed;
            try {
                parsed = Criterion.parse(c);
            } catch (HfpruneException e) {
                return new Invalid(e.getMessage());
            }
            if (configured.contains(parsed)) {
                criteria.add(parsed);
            }
        }
        if (batch.getSeqLen() != seqLen) {
            return new Invalid("seqLen " + batch.getSeqLen() + " is not the configured seq.len " + seqLen);
        }
        List<List<Integer>> windows = batch.getWindows();
        if (windows.isEmpty()) {
            return new Invalid("the batch has no windows");
        }
        int[][] ids = new int[windows.size()][];
        for (int w = 0; w < ids.length; w++) {
            List<Integer> window = windows.get(w);
            if (window.size() != seqLen) {
                return new Invalid("window " + w + " has " + window.size() + " tokens, not seqLen " + seqLen);
            }
            ids[w] = new int[seqLen];
            for (int t = 0; t < seqLen; t++) {
                int token = window.get(t);
                if (token < 0 || token >= vocabSize) {
                    return new Invalid("window " + w + " position " + t + " holds token id " + token
                            + ", outside the vocabulary [0, " + vocabSize + ")");
                }
                ids[w][t] = token;
            }
        }
        return new Valid(batch, ids, criteria);
    }
}
