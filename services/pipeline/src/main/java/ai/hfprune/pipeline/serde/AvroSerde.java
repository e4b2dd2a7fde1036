package ai.hfprune.pipeline.serde;

import org.apache.avro.Schema;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Avro SpecificRecords in the Confluent wire format: magic byte 0, the writer schema's 4-byte big-endian
 * registry id, then the Avro binary body. Subjects follow the topic-name strategy ({@code <topic>-value}).
 * Reading resolves the writer's schema (looked up by id) against this class's schema, so records written
 * with an older schema version are read with the new fields' defaults.
 */
public final class AvroSerde<T extends SpecificRecord> implements Serde<T>, Serializer<T>, Deserializer<T> {

    public static final byte MAGIC = 0;

    private final Class<T> type;
    private final Schema readerSchema;
    private final SchemaRegistry registry;
    private final boolean isKey;
    private final Map<String, Integer> idBySubject = new ConcurrentHashMap<>();
    private final Map<Integer, SpecificDatumReader<T>> readers = new ConcurrentHashMap<>();
    private final SpecificDatumWriter<T> writer;

    public AvroSerde(Class<T> type, SchemaRegistry registry) {
        this(type, registry, false);
    }

    public AvroSerde(Class<T> type, SchemaRegistry registry, boolean isKey) {
        this.type = type;
        this.readerSchema = SpecificData.get().getSchema(type);
        this.registry = registry;
        this.isKey = isKey;
        this.writer = new SpecificDatumWriter<>(readerSchema);
    }

    @Override
    public byte[] serialize(String topic, T record) {
        if (record == null) {
            return null;
        }
        String subject = topic + (isKey ? "-key" : "-value");
        int id = idBySubject.computeIfAbsent(subject, s -> registry.register(s, readerSchema));
        ByteArrayOutputStream out = new ByteArrayOutputStream(256);
        out.write(MAGIC);
        out.writeBytes(ByteBuffer.allocate(4).putInt(id).array());
        try {
            BinaryEncoder encoder = EncoderFactory.get().directBinaryEncoder(out, null);
            writer.write(record, encoder);
            encoder.flush();
        } catch (IOException | RuntimeException e) {
            throw new SerializationException("cannot encode " + type.getSimpleName() + ": " + e.getMessage(), e);
        }
        return out.toByteArray();
    }

    /**
     * @throws SerializationException with a reason fit for a dead-letter header: not the wire format, an unknown
     *                                schema id, or a body that is not Avro of that schema
     */
    @Override
    public T deserialize(String topic, byte[] bytes) {
        if (bytes == null) {
            return null;
        }
        if (bytes.length < 5 || bytes[0] != MAGIC) {
            throw new SerializationException("not the Confluent wire format (magic byte 0 and a 4-byte schema id)");
        }
        int id = ByteBuffer.wrap(bytes, 1, 4).getInt();
        SpecificDatumReader<T> reader;
        try {
            reader = readers.computeIfAbsent(id, i -> new SpecificDatumReader<>(registry.byId(i), readerSchema));
        } catch (SchemaRegistry.UnknownSchemaException e) {
            throw new SerializationException(e.getMessage(), e);
        }
        try {
            BinaryDecoder decoder = DecoderFactory.get().binaryDecoder(bytes, 5, bytes.length - 5, null);
            T record = reader.read(null, decoder);
            if (!decoder.isEnd()) {
                throw new IOException((bytes.length - 5) + "-byte body has bytes left after the record");
            }
            return record;
        } catch (IOException | RuntimeException e) {
            throw new SerializationException("not a valid Avro " + type.getSimpleName() + " (schema id " + id + "): "
                    + e.getMessage(), e);
        }
    }

    @Override
    public Serializer<T> serializer() {
        return this;
    }

    @Override
    public Deserializer<T> deserializer() {
        return this;
    }

    @Override
    public void configure(Map<String, ?> configs, boolean isKey) {
    }

    @Override
    public void close() {
    }
}
