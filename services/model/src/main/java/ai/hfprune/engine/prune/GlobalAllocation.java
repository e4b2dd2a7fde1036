package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * How many units (neurons or KV groups) each layer keeps when one ranking spans all layers: each layer's scores are
 * divided by the layer's sum (so layers whose scores have different scales compete fairly), the lowest normalized
 * scores go first, and no layer goes below its floor.
 */
final class GlobalAllocation {
    private GlobalAllocation() {
    }

    private record Unit(int layer, int index, double normalized) {
    }

    /**
     * @param scores   [layer][unit], non-negative
     * @param eligible layers that may lose units (others keep all)
     * @param remove   units to remove in all
     * @param floors   per layer, the fewest units it may keep
     * @param what     names the units and the option in messages, e.g. "MLP neurons (--mlp-ratio)"
     * @return units kept per layer
     */
    static int[] keptCounts(double[][] scores, boolean[] eligible, int remove, int[] floors, String what) {
        int n = scores.length;
        int[] kept = new int[n];
        int removable = 0;
        List<Unit> units = new ArrayList<>();
        for (int l = 0; l < n; l++) {
            kept[l] = scores[l].length;
            if (!eligible[l]) {
                continue;
            }
            removable += Math.max(0, scores[l].length - floors[l]);
            double sum = 0;
            for (double s : scores[l]) {
                if (s < 0) {
                    throw new HfpruneException("layer " + l + " has a negative score (" + s + "); global allocation"
                            + " normalizes by each layer's sum and needs non-negative scores");
                }
                sum += s;
            }
            for (int i = 0; i < scores[l].length; i++) {
                units.add(new Unit(l, i, sum > 0 ? scores[l][i] / sum : 0));
            }
        }
        if (remove > removable) {
            throw new HfpruneException("cannot remove " + remove + " " + what + ": the per-layer floor (--min-keep, and"
                    + " at least one per layer) lets at most " + removable + " go; lower the ratio or the floor");
        }
        // Lowest first; on ties the later layer and the higher index go first, so lower indices are kept.
        units.sort(Comparator.comparingDouble(Unit::normalized)
                .thenComparing(Comparator.comparingInt(Unit::layer).reversed())
                .thenComparing(Comparator.comparingInt(Unit::index).reversed()));
        int removed = 0;
        for (Unit u : units) {
            if (removed == remove) {
                break;
            }
            if (kept[u.layer()] > floors[u.layer()]) {
                kept[u.layer()]--;
                removed++;
            }
        }
        return kept;
    }
}
