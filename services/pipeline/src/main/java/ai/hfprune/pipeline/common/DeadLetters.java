package ai.hfprune.pipeline.common;

import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;

import java.nio.charset.StandardCharsets;

/**
 * The headers of a dead letter: the record is kept as it came (key and value bytes), and these say why and
 * from where, so it can be inspected and replayed.
 */
public final class DeadLetters {

    public static final String REASON = "hfprune.dlq.reason";
    public static final String SOURCE_TOPIC = "hfprune.dlq.topic";
    public static final String SOURCE_PARTITION = "hfprune.dlq.partition";
    public static final String SOURCE_OFFSET = "hfprune.dlq.offset";
    public static final String SERVICE = "hfprune.dlq.service";

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

    public static String header(Headers headers, String name) {
        var h = headers.lastHeader(name);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }

    private static byte[] utf8(String s) {
        return (s == null ? "" : s).getBytes(StandardCharsets.UTF_8);
    }
}
