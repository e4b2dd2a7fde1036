package ai.hfprune.pipeline.common;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.common.TopicPartition;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Collectors;

/**
 * The open transactions on some topics, as {@code kafka-transactions.sh find-hanging} lists them: per partition, each
 * producer whose transaction has records there but no marker yet. A partition with an open transaction holds every
 * {@code read_committed} reader at its last stable offset until the transaction ends. Normally the producer or its
 * coordinator ends it within {@code transaction.timeout.ms}; after a kill -9 of the single broker, Kafka 4.4 has once
 * left one that nothing ever ends (README, "A hanging transaction").
 */
public final class OpenTransactions {

    /** One producer's open transaction on one partition. */
    public record Open(TopicPartition partition, long producerId, int producerEpoch, long startOffset, long lastTimestampMs,
                       String coordinator) {
        /** The transaction as an operator needs it: partition, producer, start offset, what its coordinator says. */
        public String describe() {
            return partition + ": open transaction from offset " + startOffset + " of producer " + producerId + " epoch "
                    + producerEpoch + "; its coordinator: " + coordinator;
        }
    }

    private OpenTransactions() {
    }

    /** The open transactions on every partition of {@code topics}; the coordinator's view is "transactional id state". */
    public static List<Open> find(Admin admin, Collection<String> topics, Duration timeout)
            throws InterruptedException, ExecutionException, TimeoutException {
        long ms = timeout.toMillis();
        Map<String, TopicDescription> described = admin.describeTopics(topics).allTopicNames().get(ms, TimeUnit.MILLISECONDS);
        List<TopicPartition> partitions = new ArrayList<>();
        described.forEach((name, d) -> d.partitions().forEach(p -> partitions.add(new TopicPartition(name, p.partition()))));
        Map<Long, String> coordinators = admin.listTransactions().all().get(ms, TimeUnit.MILLISECONDS).stream()
                .collect(Collectors.toMap(TransactionListing::producerId, t -> t.transactionalId() + " " + t.state(), (a, b) -> a + ", " + b));
        List<Open> open = new ArrayList<>();
        admin.describeProducers(partitions).all().get(ms, TimeUnit.MILLISECONDS).forEach((tp, d) -> {
            for (ProducerState p : d.activeProducers()) {
                if (p.currentTransactionStartOffset().isPresent()) {
                    open.add(new Open(tp, p.producerId(), p.producerEpoch(), p.currentTransactionStartOffset().getAsLong(),
                            p.lastTimestamp(), coordinators.getOrDefault(p.producerId(), "no transactional id")));
                }
            }
        });
        return open;
    }
}
