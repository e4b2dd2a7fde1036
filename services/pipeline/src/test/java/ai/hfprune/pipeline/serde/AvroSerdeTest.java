package ai.hfprune.pipeline.serde;

import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.TokenBatch;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.common.errors.SerializationException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AvroSerdeTest {

    private static final String SCOPE = "avro-serde-test";
    private final InMemorySchemaRegistry registry = InMemorySchemaRegistry.scope(SCOPE);

    @AfterEach
    void dropScope() {
        InMemorySchemaRegistry.drop(SCOPE);
    }

    /** The Confluent wire format, byte for byte: magic 0, id 1 big-endian, then Avro's zig-zag varints and UTF-8. */
    @Test
    void bytesAreTheConfluentWireFormat() {
        AvroSerde<ModelId> serde = new AvroSerde<>(ModelId.class, registry);
        byte[] bytes = serde.serialize("t", new ModelId("m", "ab"));
        assertArrayEquals(new byte[] {0, 0, 0, 0, 1, 2, 'm', 4, 'a', 'b'}, bytes);
        assertEquals(List.of(1), registry.versions("t-value"));
        assertEquals(new ModelId("m", "ab"), serde.deserialize("t", bytes));
    }

    @Test
    void roundTripOfANestedRecord() {
        AvroSerde<TokenBatch> serde = new AvroSerde<>(TokenBatch.class, registry);
        TokenBatch batch = batch();
        assertEquals(batch, serde.deserialize("batches", serde.serialize("batches", batch)));
    }

    /** A record written by a producer that still has schema version 1 (no 'source') reads with the default. */
    @Test
    void readsRecordsWrittenWithAnOlderSchema() throws IOException {
        Schema v1;
        try (InputStream in = getClass().getResourceAsStream("/schemas/TokenBatch.v1.avsc")) {
            v1 = new Schema.Parser().parse(in);
        }
        int id = registry.register("batches-value", v1);
        GenericRecord model = new GenericData.Record(v1.getField("model").schema());
        model.put("name", "stories260K");
        model.put("sha256", "00ff");
        GenericRecord old = new GenericData.Record(v1);
        old.put("batchId", "b1");
        old.put("model", model);
        old.put("criteria", List.of("entropy"));
        old.put("seqLen", 2);
        old.put("windows", List.of(List.of(1, 2)));
        old.put("sequence", 7L);
        old.put("createdAtMillis", 123L);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0);
        out.writeBytes(java.nio.ByteBuffer.allocate(4).putInt(id).array());
        BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
        new GenericDatumWriter<GenericRecord>(v1).write(old, encoder);
        encoder.flush();

        TokenBatch read = new AvroSerde<>(TokenBatch.class, registry).deserialize("batches", out.toByteArray());
        assertEquals("b1", read.getBatchId());
        assertEquals(7L, read.getSequence());
        assertEquals(List.of(List.of(1, 2)), read.getWindows());
        assertEquals("", read.getSource(), "the field added in version 2 takes its default");
    }

    @Test
    void rejectsBytesThatAreNotTheWireFormat() {
        AvroSerde<TokenBatch> serde = new AvroSerde<>(TokenBatch.class, registry);
        SerializationException e = assertThrows(SerializationException.class,
                () -> serde.deserialize("t", "hello, world".getBytes()));
        assertTrue(e.getMessage().contains("wire format"), e.getMessage());
    }

    @Test
    void rejectsAnUnknownSchemaId() {
        AvroSerde<TokenBatch> serde = new AvroSerde<>(TokenBatch.class, registry);
        SerializationException e = assertThrows(SerializationException.class,
                () -> serde.deserialize("t", new byte[] {0, 0, 0, 0, 42, 1, 2, 3}));
        assertTrue(e.getMessage().contains("unknown schema id 42"), e.getMessage());
    }

    @Test
    void rejectsABodyThatIsNotTheSchema() {
        AvroSerde<TokenBatch> serde = new AvroSerde<>(TokenBatch.class, registry);
        byte[] good = serde.serialize("t", batch());
        byte[] cut = java.util.Arrays.copyOf(good, good.length - 3);
        SerializationException e = assertThrows(SerializationException.class, () -> serde.deserialize("t", cut));
        assertTrue(e.getMessage().contains("not a valid Avro TokenBatch"), e.getMessage());
    }

    private static TokenBatch batch() {
        return TokenBatch.newBuilder()
                .setBatchId("b")
                .setModel(new ModelId("stories260K", "270c"))
                .setCriteria(List.of("entropy", "ce"))
                .setSeqLen(3)
                .setWindows(List.of(List.of(1, 2, 3), List.of(4, 5, 6)))
                .setSequence(0)
                .setCreatedAtMillis(1)
                .setSource("test")
                .build();
    }
}
