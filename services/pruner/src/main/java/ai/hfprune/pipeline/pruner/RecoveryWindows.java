package ai.hfprune.pipeline.pruner;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.pipeline.common.Clients;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.scorer.TokenBatchValidator;
import ai.hfprune.schemas.TokenBatch;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Recovery's windows, read from calibration-batches: the first {@code wanted} windows of the pruner's model and
 * sequence length in the sampler's order ({@code TokenBatch.sequence}), which are the first windows of its data, as
 * {@code prune --recover-data} takes the first windows of a file.
 *
 * <p>Its own consumer, assigned to every partition and committing nothing: it never joins the scorers' group, and it
 * starts from the beginning for every version, so a trigger redone after a crash trains on the same windows (once the
 * stream holds {@code wanted} windows; before that, on those committed when it reads). It reads each partition up to
 * its last stable offset at the start, or until the partition's sequences pass the last window it needs (one sampler
 * writes each partition in increasing sequence). Records the scorers would refuse ({@link TokenBatchValidator}) are
 * theirs to dead-letter; here they are skipped, and a re-sent batch (the same {@code batchId}) counts once.
 */
final class RecoveryWindows {

    private record Position(long sequence, String batchId) {
    }

    private static final Comparator<Position> ORDER =
            Comparator.comparingLong(Position::sequence).thenComparing(Position::batchId);

    private final String bootstrap;
    private final Topics topics;
    private final TokenBatchValidator validator;
    private final long timeoutMillis;

    /** @param validator the scorers' checks, of the pruner's model, vocabulary and sequence length */
    RecoveryWindows(String bootstrap, Topics topics, TokenBatchValidator validator, long timeoutMillis) {
        this.bootstrap = bootstrap;
        this.topics = topics;
        this.validator = validator;
        this.timeoutMillis = timeoutMillis;
    }

    /** At most {@code wanted} windows, in stream order; fewer when the stream has fewer so far. */
    int[][] first(int wanted) {
        String topic = topics.calibrationBatches.name();
        TreeMap<Position, int[][]> kept = new TreeMap<>(ORDER);
        Set<String> seen = new HashSet<>();
        int keptWindows = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = Clients.reader(bootstrap)) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
                    .map(p -> new TopicPartition(topic, p.partition())).toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions); // read_committed: the last stable offsets
            Set<TopicPartition> open = new HashSet<>(partitions);
            long deadline = System.nanoTime() + Duration.ofMillis(timeoutMillis).toNanos();
            while (true) {
                open.removeIf(tp -> consumer.position(tp) >= end.get(tp));
                if (open.isEmpty()) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    throw new HfpruneException("reading recovery's windows from " + topic + " took longer than"
                            + " pruner.recover.read.timeout.ms (" + timeoutMillis + " ms); partitions left: " + open);
                }
                consumer.pause(partitions.stream().filter(tp -> !open.contains(tp)).toList());
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    if (!(validator.check(r.value()) instanceof TokenBatchValidator.Valid valid)
                            || !seen.add(valid.batch().getBatchId())) {
                        continue;
                    }
                    TokenBatch batch = valid.batch();
                    Position at = new Position(batch.getSequence(), batch.getBatchId());
                    if (keptWindows >= wanted && ORDER.compare(at, kept.lastKey()) > 0) {
                        open.remove(tp); // every later batch of this partition comes later in the stream too
                        continue;
                    }
                    kept.put(at, valid.windows());
                    keptWindows += valid.windows().length;
                    while (keptWindows - kept.lastEntry().getValue().length >= wanted) {
                        keptWindows -= kept.pollLastEntry().getValue().length;
                    }
                }
            }
        }
        List<int[]> out = new ArrayList<>();
        for (int[][] windows : kept.values()) {
            for (int[] w : windows) {
                if (out.size() < wanted) {
                    out.add(w);
                }
            }
        }
        return out.toArray(int[][]::new);
    }
}
