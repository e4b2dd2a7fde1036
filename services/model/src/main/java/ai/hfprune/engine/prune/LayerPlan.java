package ai.hfprune.engine.prune;

import java.util.Arrays;

/**
 * What one decoder layer keeps: MLP neuron indices and KV group indices, sorted ascending. A KV group is one
 * key/value head with the {@code groupSize} query heads that read it, so keeping whole groups keeps grouped-query
 * attention consistent.
 */
public record LayerPlan(int layer, int originalMlp, int[] keptMlp, int originalKvGroups, int[] keptKvGroups, int groupSize) {

    public LayerPlan {
        keptMlp = checkIndices("MLP neuron", keptMlp, originalMlp);
        keptKvGroups = checkIndices("KV group", keptKvGroups, originalKvGroups);
        if (groupSize < 1) {
            throw new IllegalArgumentException("group size " + groupSize);
        }
    }

    /** Keeps everything. */
    public static LayerPlan untouched(int layer, int mlp, int kvGroups, int groupSize) {
        return new LayerPlan(layer, mlp, range(mlp), kvGroups, range(kvGroups), groupSize);
    }

    /** The kept query heads: every head of every kept KV group, ascending. */
    public int[] keptHeads() {
        int[] heads = new int[keptKvGroups.length * groupSize];
        for (int g = 0; g < keptKvGroups.length; g++) {
            for (int j = 0; j < groupSize; j++) {
                heads[g * groupSize + j] = keptKvGroups[g] * groupSize + j;
            }
        }
        return heads;
    }

    public int originalHeads() {
        return originalKvGroups * groupSize;
    }

    public boolean isUntouched() {
        return keptMlp.length == originalMlp && keptKvGroups.length == originalKvGroups;
    }

    @Override
    public int[] keptMlp() {
        return keptMlp.clone();
    }

    @Override
    public int[] keptKvGroups() {
        return keptKvGroups.clone();
    }

    private static int[] checkIndices(String what, int[] kept, int size) {
        int[] k = kept.clone();
        if (k.length == 0) {
            throw new IllegalArgumentException("a layer must keep at least one " + what);
        }
        for (int i = 0; i < k.length; i++) {
            if (k[i] < 0 || k[i] >= size || (i > 0 && k[i] <= k[i - 1])) {
                throw new IllegalArgumentException(what + " indices must be ascending, distinct and below " + size
                        + ": " + Arrays.toString(k));
            }
        }
        return k;
    }

    static int[] range(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) {
            r[i] = i;
        }
        return r;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LayerPlan p && layer == p.layer && originalMlp == p.originalMlp
                && originalKvGroups == p.originalKvGroups && groupSize == p.groupSize
                && Arrays.equals(keptMlp, p.keptMlp) && Arrays.equals(keptKvGroups, p.keptKvGroups);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(keptMlp) * 31 + Arrays.hashCode(keptKvGroups) + layer;
    }

    @Override
    public String toString() {
        return "LayerPlan[" + layer + ": mlp " + keptMlp.length + "/" + originalMlp + ", kv groups "
                + Arrays.toString(keptKvGroups) + "/" + originalKvGroups + "]";
    }
}
