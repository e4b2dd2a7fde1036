package ai.hfprune.pipeline.common;

import ai.hfprune.pipeline.embedded.EmbeddedKafka;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An open transaction on a pipeline topic counts as hanging once its producer wrote nothing for the setting's time
 * (the watch's clock is moved on instead of waiting ten minutes), not before, not on other topics, and not after it
 * ends.
 */
class HangingTransactionWatchTest {

    @Test
    void anOpenTransactionHangsOnceItsProducerIsSilentForTheSettingsTime() throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            String bootstrap = kafka.bootstrapServers();
            Topics topics = Topics.of(PipelineConfig.defaults().with("topic.prefix", "watch."));
            try (Admin admin = Admin.create(ClientConfigs.admin(bootstrap))) {
                topics.createAll(admin, 2, (short) 1);
                admin.createTopics(List.of(new NewTopic("elsewhere", 1, (short) 1))).all().get();
            }
            AtomicLong later = new AtomicLong(); // how far the watch's clock is ahead of the real one
            SimpleMeterRegistry meters = new SimpleMeterRegistry();
            try (HangingTransactionWatch watch = new HangingTransactionWatch(Admin.create(ClientConfigs.admin(bootstrap)), "watch.",
                    Duration.ofMinutes(10), () -> System.currentTimeMillis() + later.get(), meters, "aggregator");
                 KafkaProducer<byte[], byte[]> inPipeline = producer(bootstrap, "watch.tx");
                 KafkaProducer<byte[], byte[]> outside = producer(bootstrap, "elsewhere.tx")) {
                assertEquals(List.of(), watch.check());
                inPipeline.send(new ProducerRecord<>(topics.importancePartials.name(), 1, null, new byte[] {1})).get();
                outside.send(new ProducerRecord<>("elsewhere", 0, null, new byte[] {1})).get();

                assertEquals(List.of(), watch.check(), "an open transaction whose producer just wrote is not hanging");
                later.set(Duration.ofMinutes(11).toMillis());
                List<OpenTransactions.Open> hanging = watch.check();
                assertEquals(1, hanging.size(), hanging.toString()); // the one on "elsewhere" is not the pipeline's
                assertEquals(topics.importancePartials.name() + "-1", hanging.get(0).partition().toString());
                assertEquals(0, hanging.get(0).startOffset());
                assertTrue(hanging.get(0).coordinator().startsWith("watch.tx "), hanging.get(0).coordinator());
                assertEquals(1.0, gauge(meters));

                inPipeline.commitTransaction(); // the coordinator writes the markers after it returns
                long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                while (!watch.check().isEmpty() && System.nanoTime() < deadline) {
                    Thread.sleep(200);
                }
                assertEquals(List.of(), watch.check());
                assertEquals(0.0, gauge(meters));
            }
            assertTrue(meters.find("hfprune_hanging_transactions").gauges().isEmpty(), "a closed watch leaves no gauge behind");
        }
    }

    private static KafkaProducer<byte[], byte[]> producer(String bootstrap, String transactionalId) {
        KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(ClientConfigs.transactional(bootstrap, transactionalId, transactionalId),
                new ByteArraySerializer(), new ByteArraySerializer());
        p.initTransactions();
        p.beginTransaction();
        return p;
    }

    private static double gauge(SimpleMeterRegistry meters) {
        return meters.get("hfprune_hanging_transactions").tag("service", "aggregator").gauge().value();
    }
}
