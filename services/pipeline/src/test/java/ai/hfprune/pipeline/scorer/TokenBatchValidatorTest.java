package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.pipeline.serde.AvroSerde;
import ai.hfprune.pipeline.serde.InMemorySchemaRegistry;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.Structure;
import ai.hfprune.schemas.TokenBatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TokenBatchValidatorTest {

    private static final String SCOPE = "token-batch-validator-test";
    private static final String TOPIC = "t.calibration-batches";
    private static final ModelId MODEL = new ModelId("tiny", "abc123");
    private static final int VOCAB = 10;
    private static final int T = 4;

    private AvroSerde<TokenBatch> serde;
    private TokenBatchValidator validator;

    @BeforeEach
    void setUp() {
        InMemorySchemaRegistry registry = InMemorySchemaRegistry.scope(SCOPE);
        serde = new AvroSerde<>(TokenBatch.class, registry);
        validator = new TokenBatchValidator(serde, TOPIC, MODEL, VOCAB, T, EnumSet.of(Criterion.ENTROPY, Criterion.CE));
    }

    @AfterEach
    void tearDown() {
        InMemorySchemaRegistry.drop(SCOPE);
    }

    private static TokenBatch good() {
        return TokenBatch.newBuilder().setBatchId("b1").setModel(MODEL).setCriteria(new ArrayList<>(List.of("entropy", "activation")))
                .setSeqLen(T).setWindows(new ArrayList<>(List.of(new ArrayList<>(List.of(1, 2, 3, 9)), new ArrayList<>(List.of(0, 5, 5, 5)))))
                .setSequence(0).setCreatedAtMillis(1).setSource("test").build();
    }

    private static TokenBatch with(Consumer<TokenBatch> change) {
        TokenBatch b = good();
        change.accept(b);
        return b;
    }

    private TokenBatchValidator.Result check(TokenBatch b) {
        return validator.check(serde.serialize(TOPIC, b));
    }

    private String reason(TokenBatchValidator.Result r) {
        return assertInstanceOf(TokenBatchValidator.Invalid.class, r).reason();
    }

    @Test
    void aGoodBatchIsValidWithTheCriteriaThisScorerComputes() {
        TokenBatchValidator.Valid v = assertInstanceOf(TokenBatchValidator.Valid.class, check(good()));
        assertEquals(EnumSet.of(Criterion.ENTROPY), v.criteria(), "activation is not configured here: not computed");
        assertArrayEquals(new int[][] {{1, 2, 3, 9}, {0, 5, 5, 5}}, v.windows());
        assertEquals("b1", v.batch().getBatchId());

        TokenBatchValidator.Valid none = assertInstanceOf(TokenBatchValidator.Valid.class,
                check(with(b -> b.setCriteria(new ArrayList<>(List.of("magnitude"))))));
        assertTrue(none.criteria().isEmpty(), "a batch for other scorers is valid, with nothing to compute");
        TokenBatchValidator.Valid both = assertInstanceOf(TokenBatchValidator.Valid.class,
                check(with(b -> b.setCriteria(new ArrayList<>(List.of("CE", "entropy", "ce"))))));
        assertEquals(EnumSet.of(Criterion.ENTROPY, Criterion.CE), both.criteria());
    }

    @Test
    void bytesThatAreNotATokenBatch() {
        assertTrue(reason(validator.check("not avro at all".getBytes(StandardCharsets.UTF_8))).contains("wire format"));
        assertTrue(reason(validator.check(new byte[] {0, 0, 0, 0x7f, 0x7f, 1, 2, 3})).contains("unknown schema id"));
        byte[] truncated = serde.serialize(TOPIC, good());
        byte[] cut = java.util.Arrays.copyOf(truncated, truncated.length - 3);
        assertTrue(reason(validator.check(cut)).contains("not a valid Avro TokenBatch"), reason(validator.check(cut)));
        assertTrue(reason(validator.check((byte[]) null)).contains("empty value"));
        // a record of another type, with its own (known) schema id
        AvroSerde<ImportancePartial> partials = new AvroSerde<>(ImportancePartial.class, InMemorySchemaRegistry.scope(SCOPE));
        byte[] partial = partials.serialize("t.importance-partials", ImportancePartial.newBuilder().setBatchId("b").setModel(MODEL)
                .setCriterion("entropy").setLayer(0).setNumLayers(1).setStructure(Structure.MLP).setWindows(1).setTokens(4)
                .setValues(List.of(1.0)).build());
        assertTrue(reason(validator.check(partial)).contains("not a valid Avro TokenBatch"), reason(validator.check(partial)));
    }

    @Test
    void anotherModel() {
        assertTrue(reason(check(with(b -> b.setModel(new ModelId("tiny", "fff"))))).contains("is not the configured model"));
        assertTrue(reason(check(with(b -> b.setModel(new ModelId("other", "abc123"))))).contains("is not the configured model"));
    }

    @Test
    void criteria() {
        assertTrue(reason(check(with(b -> b.setCriteria(new ArrayList<>(List.of("entropy", "bogus")))))).contains("unknown criterion 'bogus'"));
        assertTrue(reason(check(with(b -> b.setCriteria(new ArrayList<>())))).contains("no criteria"));
    }

    @Test
    void windowsOfTheWrongLengthOrNone() {
        assertTrue(reason(check(with(b -> b.setWindows(new ArrayList<>())))).contains("no windows"));
        assertTrue(reason(check(with(b -> b.getWindows().get(1).remove(0)))).contains("window 1 has 3 tokens"));
        assertTrue(reason(check(with(b -> b.getWindows().get(0).add(1)))).contains("window 0 has 5 tokens"));
        assertTrue(reason(check(with(b -> {
            b.setSeqLen(2);
            b.setWindows(new ArrayList<>(List.of(new ArrayList<>(List.of(1, 2)))));
        }))).contains("not the configured seq.len 4"));
    }

    @Test
    void tokenIdsOutsideTheVocabulary() {
        String r = reason(check(with(b -> b.getWindows().get(1).set(2, VOCAB))));
        assertTrue(r.contains("window 1 position 2 holds token id 10, outside the vocabulary [0, 10)"), r);
        assertTrue(reason(check(with(b -> b.getWindows().get(0).set(0, -1)))).contains("token id -1"));
    }

    @Test
    void batchIdsTheAggregatorWouldReject() {
        assertTrue(reason(check(with(b -> b.setBatchId("")))).contains("batch id"));
        assertTrue(reason(check(with(b -> b.setBatchId("a|b")))).contains("batch id"));
    }
}
