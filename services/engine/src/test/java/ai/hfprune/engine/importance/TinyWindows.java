package ai.hfprune.engine.importance;

import java.util.SplittableRandom;

/** Seeded random token windows for the tiny float64 models of the scoring tests. */
final class TinyWindows {
    private TinyWindows() {
    }

    static int[][] random(int vocabSize, int count, int length, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[][] windows = new int[count][length];
        for (int[] w : windows) {
            for (int t = 0; t < w.length; t++) {
                w[t] = r.nextInt(vocabSize);
            }
        }
        return windows;
    }
}
