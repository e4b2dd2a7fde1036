package ai.hfprune.engine.recover;

import java.util.SplittableRandom;

/**
 * Cycles through the training windows in batches of indices into them: each pass visits every window once in a
 * seeded random order, and a batch that reaches the end of a pass continues into the next (reshuffled) pass, so every batch is full and every
 * window is used equally often. The same seed gives the same batches.
 */
final class TrainingBatches {

    private final int batchWindows;
    private final SplittableRandom random;
    private final int[] order;
    private int next;

    TrainingBatches(int windows, int batchWindows, long seed) {
        if (windows == 0) {
            throw new IllegalArgumentException("recovery needs at least one training window");
        }
        if (batchWindows < 1) {
            throw new IllegalArgumentException("batchWindows must be at least 1, got " + batchWindows);
        }
        this.batchWindows = batchWindows;
        this.random = new SplittableRandom(seed);
        this.order = new int[windows];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        shuffle();
    }

    int[] next() {
        int[] batch = new int[batchWindows];
        for (int i = 0; i < batchWindows; i++) {
            if (next == order.length) {
                shuffle();
            }
            batch[i] = order[next++];
        }
        return batch;
    }

    /** Fisher–Yates over the whole order, then start the pass again. */
    private void shuffle() {
        for (int i = order.length - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        next = 0;
    }
}
