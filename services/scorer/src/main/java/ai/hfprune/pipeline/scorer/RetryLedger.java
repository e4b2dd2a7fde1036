package ai.hfprune.pipeline.scorer;

import org.apache.kafka.clients.consumer.ConsumerRecord;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * What a scorer remembers of the records it is retrying, keyed by partition:offset ({@link #key}); both threads update
 * it: the scoring thread when a batch fails to score, the committer thread when a transaction fails or commits.
 */
final class RetryLedger {

    /** Failed attempts per partition:offset of the record being retried (both threads update it). */
    final Map<String, Integer> attempts = new ConcurrentHashMap<>();
    final AtomicInteger consecutiveGiveUps = new AtomicInteger();
    /** Records whose scoring touched the statistics and then failed for good: dead-lettered without scoring again. */
    final Map<String, String> poisoned = new ConcurrentHashMap<>();
    /** Records of a group whose transaction failed for good: each is retried in a transaction of its own. */
    final Set<String> alone = ConcurrentHashMap.newKeySet();
    /** Records whose own transaction failed for good, with the reason: dead-lettered without their value. */
    final Map<String, String> unsendable = new ConcurrentHashMap<>();

    static String key(ConsumerRecord<byte[], byte[]> record) {
        return record.topic() + "-" + record.partition() + "@" + record.offset();
    }

    /** One more failed attempt of {@code key}; returns how many there were. */
    int failed(String key) {
        return attempts.merge(key, 1, Integer::sum);
    }

    /** {@code key}'s transaction committed: nothing of it is retried any more. */
    void committed(String key) {
        attempts.remove(key);
        poisoned.remove(key);
        alone.remove(key);
        unsendable.remove(key);
    }
}
