package ai.hfprune.cli.chaos;

import ai.hfprune.pipeline.common.DeadLetters;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.LayerKept;
import ai.hfprune.schemas.LayerScores;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneStatus;
import ai.hfprune.schemas.PruneTrigger;
import org.apache.kafka.clients.consumer.ConsumerRecord;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What a chaos run must have left on the topics, checked against the single-process {@link Reference} and against what
 * chaos sent: one trigger covering every batch (nothing lost, nothing twice), sums bit-identical to {@code score}'s,
 * the kept sets of {@code prune}, each bad record dead-lettered once with its reason and nothing else dead-lettered,
 * and as many duplicates dropped as were sent.
 */
final class ChaosChecks {

    /** One line of the verdict. */
    record Check(String what, boolean ok, String detail) {
    }

    private final List<Check> checks = new ArrayList<>();
    /** Each bad record's kind, size and the reason its dead letter gives. */
    private final List<String> reasons = new ArrayList<>();

    List<String> reasons() {
        return List.copyOf(reasons);
    }

    List<Check> checks() {
        return List.copyOf(checks);
    }

    boolean allOk() {
        return checks.stream().allMatch(Check::ok);
    }

    private void add(String what, boolean ok, String detail) {
        checks.add(new Check(what, ok, detail));
    }

    /** The coverage and sums of the run's triggers against the reference's {@code tokens}, windows and batches. */
    void triggers(String bootstrap, Topics topics, Reference reference, long batches) {
        List<PruneTrigger> triggers = TopicReads.readAll(bootstrap, topics.pruneTriggers.name()).stream()
                .map(r -> topics.pruneTriggers.valueSerde().deserializer().deserialize(r.topic(), r.value())).toList();
        add("one trigger", triggers.size() == 1, triggers.size() + " trigger(s) on prune-triggers");
        if (triggers.isEmpty()) {
            return;
        }
        CoverageSnapshot s = triggers.get(triggers.size() - 1).getSnapshot();
        boolean complete = s.getTokens() == reference.sums().tokens() && s.getWindows() == reference.sums().windows()
                && s.getBatches() == batches && s.getPendingBatches() == 0;
        add("nothing lost, nothing twice", complete, String.format("%d tokens, %d windows, %d batches (%d pending); score: %d, %d, %d",
                s.getTokens(), s.getWindows(), s.getBatches(), s.getPendingBatches(), reference.sums().tokens(),
                reference.sums().windows(), batches));
        long values = 0;
        long differ = 0;
        double worst = 0;
        for (LayerScores layer : s.getLayers()) {
            int l = layer.getLayer();
            double[][] expected = {reference.sums().mlp()[l], reference.sums().heads()[l]};
            List<List<Double>> actual = List.of(layer.getMlp(), layer.getHeads());
            for (int k = 0; k < 2; k++) {
                if (expected[k].length != actual.get(k).size()) {
                    differ += Math.max(expected[k].length, actual.get(k).size());
                    continue;
                }
                for (int i = 0; i < expected[k].length; i++) {
                    double e = expected[k][i];
                    double a = actual.get(k).get(i);
                    values++;
                    if (Double.doubleToLongBits(e) != Double.doubleToLongBits(a)) {
                        differ++;
                        worst = Math.max(worst, Math.abs(a - e) / Math.abs(e));
                    }
                }
            }
        }
        boolean allLayers = s.getLayers().size() == reference.sums().mlp().length;
        add("totals bit-identical to score", differ == 0 && values > 0 && allLayers,
                String.format("%d of %d sums differ in any bit (largest relative difference %.3g); %d of %d layers", differ, values,
                        worst, s.getLayers().size(), reference.sums().mlp().length));
    }

    /** The pruner's result: one, written, keeping what {@code prune} keeps with the reference's scores. */
    void results(String bootstrap, Topics topics, Reference reference) {
        List<PruneResult> results = TopicReads.readAll(bootstrap, topics.pruneResults.name()).stream()
                .map(r -> topics.pruneResults.valueSerde().deserializer().deserialize(r.topic(), r.value())).toList();
        if (results.size() != 1 || results.get(0).getStatus() != PruneStatus.WRITTEN) {
            add("kept sets identical to prune", false, results.size() + " result(s): "
                    + results.stream().map(r -> r.getStatus() + " " + r.getError()).toList());
            return;
        }
        List<LayerKept> kept = results.get(0).getKept();
        int same = 0;
        for (int l = 0; l < Math.min(kept.size(), reference.kept().size()); l++) {
            Reference.Kept e = reference.kept().get(l);
            if (e.mlp().equals(kept.get(l).getMlp()) && e.kvGroups().equals(kept.get(l).getKvGroups())) {
                same++;
            }
        }
        add("kept sets identical to prune", same == reference.kept().size() && kept.size() == same,
                same + " of " + reference.kept().size() + " layers keep the same MLP neurons and KV groups (version "
                        + results.get(0).getVersion() + " WRITTEN)");
    }

    /** Every injected record dead-lettered exactly once, by the service that consumes its topic, with a reason. */
    void deadLetters(String bootstrap, Topics topics, List<BadRecords.Injected> injected) {
        List<ConsumerRecord<byte[], byte[]>> dead = TopicReads.readAll(bootstrap, topics.deadLetters.name());
        Map<String, Integer> kinds = new TreeMap<>();
        List<String> problems = new ArrayList<>();
        int matched = 0;
        for (BadRecords.Injected i : injected) {
            List<ConsumerRecord<byte[], byte[]>> found = dead.stream().filter(d -> i.topic().equals(header(d, DeadLetters.SOURCE_TOPIC))
                    && String.valueOf(i.partition()).equals(header(d, DeadLetters.SOURCE_PARTITION))
                    && String.valueOf(i.offset()).equals(header(d, DeadLetters.SOURCE_OFFSET))).toList();
            String reason = found.isEmpty() ? null : header(found.get(0), DeadLetters.REASON);
            if (found.size() != 1 || reason == null || reason.isBlank() || !i.consumer().equals(header(found.get(0), DeadLetters.SERVICE))) {
                problems.add(i.kind() + " on " + i.topic() + ": " + found.size() + " dead letter(s)"
                        + (reason == null ? "" : ", reason '" + reason + "'"));
            } else {
                matched++;
                kinds.merge(i.kind(), 1, Integer::sum);
                reasons.add(String.format("%s, %s (%d B) -> %s: %s", i.topic().substring(i.topic().lastIndexOf('.') + 1), i.kind(),
                        i.bytes(), i.consumer(), reason.length() > 120 ? reason.substring(0, 120) + "…" : reason));
            }
        }
        add("every bad record dead-lettered once, with its reason", problems.isEmpty() && !injected.isEmpty(),
                matched + " of " + injected.size() + " " + kinds + (problems.isEmpty() ? "" : "; " + problems));
        long others = dead.size() - matched;
        add("no valid record dead-lettered", others == 0, others + " other dead letter(s)"
                + (others == 0 ? "" : ": " + dead.stream().map(d -> header(d, DeadLetters.REASON)).distinct().limit(3).toList()));
    }

    void duplicates(int sent, double dropped) {
        add("duplicates dropped = duplicates sent", sent > 0 && dropped == sent,
                String.format("%d sent, %.0f dropped (the aggregator's hfprune_aggregator_duplicates_dropped_total)", sent, dropped));
    }

    static String header(ConsumerRecord<byte[], byte[]> r, String name) {
        return DeadLetters.header(r.headers(), name);
    }
}
