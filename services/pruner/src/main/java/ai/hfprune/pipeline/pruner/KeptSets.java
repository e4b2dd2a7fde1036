package ai.hfprune.pipeline.pruner;

import ai.hfprune.engine.prune.LayerPlan;
import ai.hfprune.engine.prune.PrunePlan;
import ai.hfprune.schemas.LayerKept;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** The kept neurons and KV groups of a plan, and how much they changed between versions. */
final class KeptSets {
    private KeptSets() {
    }

    static List<LayerKept> of(PrunePlan plan) {
        List<LayerKept> out = new ArrayList<>();
        for (LayerPlan layer : plan.layers()) {
            out.add(new LayerKept(layer.layer(), Arrays.stream(layer.keptMlp()).boxed().toList(),
                    Arrays.stream(layer.keptKvGroups()).boxed().toList()));
        }
        return out;
    }

    /**
     * The fraction of kept MLP neurons and KV groups that the previous version did not keep: 0 when the kept sets
     * are identical, 1 when there is no previous version.
     */
    static double changed(List<LayerKept> previous, List<LayerKept> current) {
        if (previous == null || previous.size() != current.size()) {
            return 1.0;
        }
        long kept = 0;
        long fresh = 0;
        for (int l = 0; l < current.size(); l++) {
            fresh += notIn(current.get(l).getMlp(), previous.get(l).getMlp());
            fresh += notIn(current.get(l).getKvGroups(), previous.get(l).getKvGroups());
            kept += current.get(l).getMlp().size() + current.get(l).getKvGroups().size();
        }
        return kept == 0 ? 0.0 : (double) fresh / kept;
    }

    private static long notIn(List<Integer> a, List<Integer> b) {
        java.util.Set<Integer> set = new java.util.HashSet<>(b);
        return a.stream().filter(i -> !set.contains(i)).count();
    }
}
