package ai.hfprune.cli.chaos;

import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.embedded.EmbeddedKafka;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** An open transaction on a run's topic is named, with its partition, start offset and coordinator state; a committed one is not. */
class HangingTransactionsTest {

    @Test
    void namesTheOpenTransactionOnlyUntilItCommits() throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            String bootstrap = kafka.bootstrapServers();
            Topics topics = Topics.of(PipelineConfig.defaults().with("topic.prefix", "hanging."));
            try (Admin admin = Admin.create(ClientConfigs.admin(bootstrap))) {
                topics.createAll(admin, 2, (short) 1);
            }
            assertEquals(List.of(), HangingTransactions.find(bootstrap, topics));
            try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(ClientConfigs.transactional(bootstrap, "t", "hanging.tx"),
                    new ByteArraySerializer(), new ByteArraySerializer())) {
                p.initTransactions();
                p.beginTransaction();
                p.send(new ProducerRecord<>(topics.deadLetters.name(), 1, null, new byte[] {1})).get();
                List<String> open = HangingTransactions.find(bootstrap, topics);
                assertEquals(1, open.size(), open.toString());
                assertTrue(open.get(0).startsWith(topics.deadLetters.name() + "-1: open transaction from offset 0 of producer "), open.get(0));
                assertTrue(open.get(0).endsWith("its coordinator: hanging.tx Ongoing"), open.get(0));
                p.commitTransaction(); // returns once the commit is prepared; the coordinator writes the markers after that
            }
            long deadline = System.nanoTime() + 30_000_000_000L;
            List<String> open;
            while (!(open = HangingTransactions.find(bootstrap, topics)).isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(200);
            }
            assertEquals(List.of(), open);
        }
    }
}
