package ai.hfprune.pipeline.common;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;

import java.nio.charset.StandardCharsets;

/**
 * The headers of a dead letter: the record is kept as it came (key and value bytes), and these say why and
 * from where, so it can be inspected and replayed. A record whose key and value leave no room for the headers
 * under the record limit (the broker took it, but with headers it would not fit) is dead-lettered without its value:
 * the reason then says so and {@link #ORIGINAL_BYTES} gives the value's size, so it can be found at its source
 * offset.
 */
public final class DeadLetters {

    public static final String REASON = "hfprune.dlq.reason";
    public static final String SOURCE_TOPIC = "hfprune.dlq.topic";
    public static final String SOURCE_PARTITION = "hfprune.dlq.partition";
    public static final String SOURCE_OFFSET = "hfprune.dlq.offset";
    public static final String SERVICE = "hfprune.dlq.service";
    /** Set when the value was left out: its size in bytes. */
    public static final String ORIGINAL_BYTES = "hfprune.dlq.original.bytes";
    /** The most key and value bytes a dead letter carries as they came: the record limit less room for headers. */
    public static final int MAX_CARRIED_BYTES = Topics.MAX_RECORD_BYTES - (64 << 10);

    private DeadLetters() {
    }

    public static Headers headers(String reason, String topic, int partition, long offset, String service) {
        RecordHeaders h = new RecordHeaders();
        h.add(REASON, utf8(reason));
        h.add(SOURCE_TOPIC, utf8(topic));
        h.add(SOURCE_PARTITION, utf8(String.valueOf(partition)));
        h.add(SOURCE_OFFSET, utf8(String.valueOf(offset)));
        h.add(SERVICE, utf8(service));
        return h;
    }

    /** A dead letter of {@code source} for {@code topic}, its value left out if too large ({@link #carried}). */
    public static ProducerRecord<byte[], byte[]> of(String topic, ConsumerRecord<byte[], byte[]> source, String reason, String service) {
        return of(topic, source, reason, service, MAX_CARRIED_BYTES);
    }

    /** As {@link #of(String, ConsumerRecord, String, String)} with a limit of its own (-1: the value is always left out). */
    public static ProducerRecord<byte[], byte[]> of(String topic, ConsumerRecord<byte[], byte[]> source, String reason, String service,
                                                    int limit) {
        Headers h = headers(reason, source.topic(), source.partition(), source.offset(), service);
        byte[] value = carried(source.key(), source.value(), h, limit);
        return new ProducerRecord<>(topic, null, source.key(), value, h);
    }

    /**
     * The value a dead letter carries: {@code value} as it came, or null when key and value exceed {@code limit}; then
     * the reason in {@code headers} says the value was left out and {@link #ORIGINAL_BYTES} gives its size.
     */
    public static byte[] carried(byte[] key, byte[] value, Headers headers, int limit) {
        long keyBytes = key == null ? 0 : key.length;
        long valueBytes = value == null ? 0 : value.length;
        if (keyBytes + valueBytes <= limit) {
            return value;
        }
        String reason = header(headers, REASON);
        headers.remove(REASON);
        headers.add(REASON, utf8(reason + " (value of " + valueBytes + " bytes left out"
                + (limit >= 0 ? ": with these headers it would exceed the " + limit + "-byte limit of a dead letter)" : ")")));
        headers.add(ORIGINAL_BYTES, utf8(String.valueOf(valueBytes)));
        return null;
    }

    public static String header(Headers headers, String name) {
        var h = headers.lastHeader(name);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }

    private static byte[] utf8(String s) {
        return (s == null ? "" : s).getBytes(StandardCharsets.UTF_8);
    }
}
