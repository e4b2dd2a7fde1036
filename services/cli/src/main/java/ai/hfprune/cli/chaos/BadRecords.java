package ai.hfprune.cli.chaos;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.schemas.ImportancePartial;
import ai.hfprune.schemas.Structure;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * What chaos puts on the topics besides the sampler's batches: a bad record of every kind on each topic a service
 * consumes (the scorers' calibration-batches, the aggregator's importance-partials), and exact copies of valid
 * partials. Each bad record is remembered by where the broker put it (topic, partition, offset), which its dead letter
 * names in its headers.
 */
final class BadRecords implements AutoCloseable {

    /** The kinds, in the order {@link ChaosCommand} spreads them over the kills. */
    static final List<String> KINDS = List.of("garbage bytes", "wrong schema id", "truncated Avro", "large record");

    /** A bad record as sent: its kind, size and place. */
    record Injected(String topic, String kind, int bytes, int partition, long offset, String consumer) {
    }

    private final Topics topics;
    private final ModelInfo model;
    private final int largeBytes;
    private final Random random;
    private final String bootstrap;
    private final KafkaProducer<byte[], byte[]> producer;
    private final List<Injected> injected = Collections.synchronizedList(new ArrayList<>());
    private int duplicates;

    BadRecords(String bootstrap, Topics topics, ModelInfo model, int largeBytes, long seed) {
        this.bootstrap = bootstrap;
        this.topics = topics;
        this.model = model;
        this.largeBytes = largeBytes;
        this.random = new Random(seed);
        this.producer = new KafkaProducer<>(ClientConfigs.producer(bootstrap, "chaos-injector"), new ByteArraySerializer(),
                new ByteArraySerializer());
    }

    /** Sends one bad record of {@code kind} to calibration-batches and one to importance-partials. */
    void inject(String kind) {
        String batches = topics.calibrationBatches.name();
        String partials = topics.importancePartials.name();
        String partialKey = Keys.partial(model.id(), "entropy", 0, Structure.MLP);
        switch (kind) {
            case "garbage bytes" -> {
                send(batches, kind, "chaos-garbage", randomBytes(1000), "scorer");
                send(partials, kind, partialKey, randomBytes(1000), "aggregator");
            }
            case "wrong schema id" -> { // the wire format's magic byte, then an id the registry never gave
                send(batches, kind, "chaos-schema-id", wrongSchemaId(), "scorer");
                send(partials, kind, partialKey, wrongSchemaId(), "aggregator");
            }
            case "truncated Avro" -> { // a valid record of each topic, cut in the middle of its body
                ConsumerRecord<byte[], byte[]> batch = TopicReads.firstRecord(bootstrap, batches, r -> !isInjected(r), Duration.ofMinutes(2));
                send(batches, kind, "chaos-truncated", Arrays.copyOf(batch.value(), 5 + (batch.value().length - 5) / 2), "scorer");
                ConsumerRecord<byte[], byte[]> partial = TopicReads.firstRecord(bootstrap, partials, r -> !isInjected(r), Duration.ofMinutes(2));
                send(partials, kind, new String(partial.key(), StandardCharsets.UTF_8),
                        Arrays.copyOf(partial.value(), 5 + (partial.value().length - 5) / 2), "aggregator");
            }
            case "large record" -> { // garbage for the scorers; for the aggregator a valid Avro partial of that size
                send(batches, kind, "chaos-large", randomBytes(largeBytes), "scorer");
                send(partials, kind, partialKey, largePartial(), "aggregator");
            }
            default -> throw new IllegalArgumentException(kind);
        }
    }

    /** Sends exact copies (key and value bytes) of {@code n} committed partials picked at random; returns how many. */
    int duplicate(int n) {
        List<ConsumerRecord<byte[], byte[]>> all = TopicReads.readAll(bootstrap, topics.importancePartials.name());
        List<ConsumerRecord<byte[], byte[]>> valid = new ArrayList<>(all.stream().filter(r -> !isInjected(r)).toList());
        Collections.shuffle(valid, random);
        int sent = 0;
        for (ConsumerRecord<byte[], byte[]> r : valid.subList(0, Math.min(n, valid.size()))) {
            await(producer.send(new ProducerRecord<>(r.topic(), r.partition(), r.key(), r.value())));
            sent++;
        }
        duplicates += sent;
        return sent;
    }

    List<Injected> injected() {
        return List.copyOf(injected);
    }

    int duplicatesSent() {
        return duplicates;
    }

    private boolean isInjected(ConsumerRecord<byte[], byte[]> r) {
        synchronized (injected) {
            return injected.stream().anyMatch(i -> i.topic().equals(r.topic()) && i.partition() == r.partition()
                    && i.offset() == r.offset());
        }
    }

    private void send(String topic, String kind, String key, byte[] value, String consumer) {
        RecordMetadata m = await(producer.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8), value)));
        injected.add(new Injected(topic, kind, value.length, m.partition(), m.offset(), consumer));
    }

    private static RecordMetadata await(java.util.concurrent.Future<RecordMetadata> f) {
        try {
            return f.get(3, TimeUnit.MINUTES); // a broker restart may be under way
        } catch (Exception e) {
            throw new HfpruneException("chaos could not send a record: " + e, e);
        }
    }

    private byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        b[0] = 1; // never the wire format's magic byte 0
        return b;
    }

    private byte[] wrongSchemaId() {
        byte[] body = new byte[200];
        random.nextBytes(body);
        return ByteBuffer.allocate(5 + body.length).put((byte) 0).putInt(Integer.MAX_VALUE - random.nextInt(1000)).put(body).array();
    }

    /** An ImportancePartial of the configured model, valid Avro, but with a vector of {@code largeBytes / 8} values. */
    private byte[] largePartial() {
        Double[] values = new Double[largeBytes / 8];
        Arrays.fill(values, 1.0);
        ImportancePartial p = ImportancePartial.newBuilder().setBatchId("chaos-large").setModel(model.id()).setCriterion("entropy")
                .setLayer(0).setNumLayers(model.numLayers()).setStructure(Structure.MLP).setWindows(1).setTokens(1)
                .setValues(Arrays.asList(values)).setScorerId("chaos").setStatsGroup("").build();
        return topics.importancePartials.valueSerde().serializer().serialize(topics.importancePartials.name(), p);
    }

    @Override
    public void close() {
        producer.close(Duration.ofSeconds(10));
    }
}
