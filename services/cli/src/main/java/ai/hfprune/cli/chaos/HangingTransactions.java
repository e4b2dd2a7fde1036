package ai.hfprune.cli.chaos;

import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.OpenTransactions;
import ai.hfprune.pipeline.common.Topics;
import org.apache.kafka.clients.admin.Admin;

import java.time.Duration;
import java.util.List;

/**
 * The open transactions on a run's topics ({@link OpenTransactions}). Why a chaos run asks: after a kill -9 of the
 * single broker, Kafka has once left a partition with an open transaction (no marker) whose producer's coordinator
 * already said Empty, a transaction no timeout ever ends (README, Chaos). A run that stops moving names them instead of
 * only timing out.
 */
final class HangingTransactions {

    private HangingTransactions() {
    }

    /** One line per open transaction on the topics: partition, producer, start offset, the coordinator's state. */
    static List<String> find(String bootstrap, Topics topics) {
        try (Admin admin = Admin.create(ClientConfigs.admin(bootstrap))) {
            return OpenTransactions.find(admin, topics.all().stream().map(Topics.Topic::name).toList(), Duration.ofSeconds(30))
                    .stream().map(OpenTransactions.Open::describe).toList();
        } catch (Exception e) {
            return List.of("(open transactions not known: " + e + ")");
        }
    }
}
