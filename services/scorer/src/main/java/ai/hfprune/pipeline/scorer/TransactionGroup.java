package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.importance.Criterion;
import org.apache.kafka.clients.consumer.ConsumerRecord;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** The outcomes of one scorer transaction, in offset order; with statistics also the batches they sum (a stats group). */
final class TransactionGroup {

    final List<Outcome> outcomes = new ArrayList<>();
    final List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
    /** ids of the scored batches, in order: the batches of the group's statistics */
    final List<String> batchIds = new ArrayList<>();
    final Set<String> ids = new HashSet<>();
    Set<Criterion> criteria = Set.of();
    long tokens;
    /** the index in the current poll of the group's first record (0 for a group carried from an earlier poll) */
    int pollFrom;

    TransactionGroup(int pollFrom) {
        this.pollFrom = pollFrom;
    }

    boolean isEmpty() {
        return outcomes.isEmpty();
    }

    /**
     * Whether a batch can join the group's statistics: the group's statistics are sent for one criteria set, so a
     * batch with another one starts a new group, and a batch id the group has already (a re-sent batch) would count
     * its statistics twice. Records that will not be scored join any group.
     */
    boolean accepts(TokenBatchValidator.Result check) {
        if (!(check instanceof TokenBatchValidator.Valid v) || v.criteria().isEmpty() || batchIds.isEmpty()) {
            return true;
        }
        return v.criteria().equals(criteria) && !ids.contains(v.batch().getBatchId());
    }

    void add(Outcome o) {
        outcomes.add(o);
        records.add(o.record());
        if (o.deadReason() == null && !o.scores().isEmpty()) {
            String id = o.valid().batch().getBatchId();
            batchIds.add(id);
            ids.add(id);
            criteria = Set.copyOf(o.valid().criteria());
            int[][] w = o.valid().windows();
            tokens += (long) w.length * w[0].length;
        }
    }
}
