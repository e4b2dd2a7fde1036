package ai.hfprune.cli.chaos;

import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.Topics;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.common.TopicPartition;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * The open transactions on a run's topics, as {@code kafka-transactions.sh find-hanging} shows them: a partition with an
 * open transaction holds every {@code read_committed} reader at its last stable offset. Why a chaos run asks: after a
 * kill -9 of the single broker, Kafka 4.1 has once left a partition with an open transaction (no marker) whose
 * producer's coordinator already said Empty, that is, a transaction no timeout ever ends (README, Chaos). A run that
 * stops moving names them instead of only timing out.
 */
final class HangingTransactions {

    private HangingTransactions() {
    }

    /** One line per open transaction on the topics: partition, producer, start offset, the coordinator's state. */
    static List<String> find(String bootstrap, Topics topics) {
        try (Admin admin = Admin.create(ClientConfigs.admin(bootstrap))) {
            List<String> names = topics.all().stream().map(Topics.Topic::name).toList();
            Map<String, TopicDescription> described = admin.describeTopics(names).allTopicNames().get(30, TimeUnit.SECONDS);
            List<TopicPartition> partitions = new ArrayList<>();
            described.forEach((name, d) -> d.partitions().forEach(p -> partitions.add(new TopicPartition(name, p.partition()))));
            Map<Long, String> coordinatorStates = admin.listTransactions().all().get(30, TimeUnit.SECONDS).stream()
                    .collect(Collectors.toMap(TransactionListing::producerId,
                            t -> t.transactionalId() + " " + t.state(), (a, b) -> a + ", " + b));
            List<String> open = new ArrayList<>();
            admin.describeProducers(partitions).all().get(30, TimeUnit.SECONDS).forEach((tp, d) -> {
                for (ProducerState p : d.activeProducers()) {
                    if (p.currentTransactionStartOffset().isPresent()) {
                        open.add(tp + ": open transaction from offset " + p.currentTransactionStartOffset().getAsLong() + " of producer "
                                + p.producerId() + " epoch " + p.producerEpoch() + "; its coordinator: "
                                + coordinatorStates.getOrDefault(p.producerId(), "no transactional id"));
                    }
                }
            });
            return open;
        } catch (Exception e) {
            return List.of("(open transactions not known: " + e + ")");
        }
    }
}
