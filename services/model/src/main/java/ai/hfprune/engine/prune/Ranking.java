package ai.hfprune.engine.prune;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/** Keeps the highest scores of a layer. */
final class Ranking {
    private Ranking() {
    }

    /** The indices of the {@code k} highest scores, ties going to the lower index, sorted ascending. */
    static int[] keepTop(double[] scores, int k) {
        int[] kept = IntStream.range(0, scores.length).boxed()
                .sorted(Comparator.<Integer>comparingDouble(i -> -scores[i]).thenComparingInt(i -> i))
                .limit(k)
                .mapToInt(Integer::intValue)
                .toArray();
        Arrays.sort(kept);
        return kept;
    }
}
