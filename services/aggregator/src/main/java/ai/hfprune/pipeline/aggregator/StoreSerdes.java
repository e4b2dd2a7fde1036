package ai.hfprune.pipeline.aggregator;

import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;

/** Serdes of the aggregator's state stores (private to the aggregator: no registry, no evolution across versions). */
final class StoreSerdes {
    private StoreSerdes() {
    }

    /** float64 vectors, 8 big-endian bytes each. */
    static Serde<double[]> doubles() {
        return Serdes.serdeFrom((topic, v) -> {
            if (v == null) {
                return null;
            }
            ByteBuffer b = ByteBuffer.allocate(v.length * 8);
            b.asDoubleBuffer().put(v);
            return b.array();
        }, (topic, bytes) -> {
            if (bytes == null) {
                return null;
            }
            double[] v = new double[bytes.length / 8];
            ByteBuffer.wrap(bytes).asDoubleBuffer().get(v);
            return v;
        });
    }

    /** Plain Avro binary of a SpecificRecord class. */
    static <T extends org.apache.avro.specific.SpecificRecord> Serde<T> avro(Class<T> type) {
        SpecificDatumWriter<T> writer = new SpecificDatumWriter<>(type);
        SpecificDatumReader<T> reader = new SpecificDatumReader<>(type);
        return Serdes.serdeFrom((topic, v) -> {
            if (v == null) {
                return null;
            }
            try {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                BinaryEncoder e = EncoderFactory.get().binaryEncoder(out, null);
                writer.write(v, e);
                e.flush();
                return out.toByteArray();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }, (topic, bytes) -> {
            if (bytes == null) {
                return null;
            }
            try {
                BinaryDecoder d = DecoderFactory.get().binaryDecoder(bytes, null);
                return reader.read(null, d);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }
}
