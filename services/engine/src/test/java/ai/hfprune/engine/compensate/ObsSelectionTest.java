package ai.hfprune.engine.compensate;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.hfprune.engine.io.MapTensorSource;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The refit-aware selection is the greedy choice it claims to be: at every step it removes the column (block) whose
 * removal leaves the least least-squares error, which is checked against a brute-force greedy that re-solves the
 * refit from the stacked activations by QR ({@link QrLeastSquares}) for every candidate, with no Gram matrix, no
 * inverse and no update formula.
 */
class ObsSelectionTest {

    private static final int TOKENS = 60;
    private static final int ROWS = 5;

    @Test
    void removesColumnsInTheOrderOfTheLeastRefitError() {
        check(12, 1, 7, 1);
        check(12, 1, 3, 2);
    }

    @Test
    void removesBlocksOfColumnsAsKvGroups() {
        check(12, 3, 2, 3); // 4 blocks of 3 columns, keep 2
        check(16, 4, 3, 4);
    }

    /** With output sensitivities, the greedy order follows the error weighed per output row. */
    @Test
    void weighsEachOutputRowsErrorByItsSensitivity() {
        check(12, 1, 5, 5, new double[] {1e-3, 20, 1, 1e-2, 50});
        check(12, 3, 2, 6, new double[] {30, 1e-3, 0.5, 1e-2, 1});
    }

    @Test
    void smallInverseIsExact() {
        double[] a = {4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2};
        double[] inv = ObsSelection.invert(a, 3);
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++) {
                double s = 0;
                for (int k = 0; k < 3; k++) {
                    s += a[i * 3 + k] * inv[k * 3 + j];
                }
                assertEquals(i == j ? 1 : 0, s, 1e-12);
            }
        }
    }

    private static void check(int n, int block, int keepBlocks, long seed) {
        check(n, block, keepBlocks, seed, null);
    }

    private static void check(int n, int block, int keepBlocks, long seed, double[] rowWeights) {
        Random random = new Random(seed);
        double[] x = new double[TOKENS * n];
        for (int t = 0; t < TOKENS; t++) { // correlated inputs, as activations are: a shared factor plus noise
            double shared = random.nextGaussian();
            for (int i = 0; i < n; i++) {
                x[t * n + i] = (0.3 + i % 4) * random.nextGaussian() + (i % 3) * shared;
            }
        }
        float[] w = new float[ROWS * n];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) random.nextGaussian();
        }
        MapTensorSource dense = new MapTensorSource();
        dense.put("w", new long[] {ROWS, n}, w);
        int[] kept;
        try (NDManager manager = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
            kept = ObsSelection.keep(manager, dense, "w", gram(x, n), block, keepBlocks, 0, rowWeights);
        }
        assertArrayEquals(bruteForceGreedy(x, n, w, block, keepBlocks, rowWeights), kept, "n " + n + ", block " + block);
        if (rowWeights != null) { // the weights must matter here, or the test would not tell weighed from plain
            assertTrue(!Arrays.equals(bruteForceGreedy(x, n, w, block, keepBlocks, null), kept), "weights change the choice");
        }
    }

    /** Removes, one block at a time, the block whose removal leaves the least error of the best refit of the rest. */
    private static int[] bruteForceGreedy(double[] x, int n, float[] w, int block, int keepBlocks, double[] rowWeights) {
        List<Integer> alive = new ArrayList<>(IntStream.range(0, n / block).boxed().toList());
        while (alive.size() > keepBlocks) {
            int best = -1;
            double bestError = Double.POSITIVE_INFINITY;
            for (int candidate : alive) {
                int[] columns = alive.stream().filter(b -> b != candidate)
                        .flatMapToInt(b -> IntStream.range(b * block, (b + 1) * block)).toArray();
                double error = refitError(x, n, w, columns, rowWeights);
                if (error < bestError) {
                    bestError = error;
                    best = candidate;
                }
            }
            alive.remove(Integer.valueOf(best));
        }
        return alive.stream().mapToInt(Integer::intValue).sorted().toArray();
    }

    /**
     * min_B Σ_t ‖W·x_t − B·x_t[K]‖², solved by QR on the stacked activations, and its residual, each output row's
     * squares weighed by {@code rowWeights[r]} (1 if null): a row's best refit does not depend on the others.
     */
    private static double refitError(double[] x, int n, float[] w, int[] kept, double[] rowWeights) {
        int k = kept.length;
        double[] design = new double[TOKENS * k];
        double[] target = new double[TOKENS * ROWS];
        for (int t = 0; t < TOKENS; t++) {
            for (int j = 0; j < k; j++) {
                design[t * k + j] = x[t * n + kept[j]];
            }
            for (int r = 0; r < ROWS; r++) {
                for (int i = 0; i < n; i++) {
                    target[t * ROWS + r] += w[r * n + i] * x[t * n + i];
                }
            }
        }
        double[] b = QrLeastSquares.solve(design, TOKENS, k, target, ROWS, 0); // (k × rows)
        double error = 0;
        for (int t = 0; t < TOKENS; t++) {
            for (int r = 0; r < ROWS; r++) {
                double y = 0;
                for (int j = 0; j < k; j++) {
                    y += design[t * k + j] * b[j * ROWS + r];
                }
                error += (rowWeights == null ? 1 : rowWeights[r]) * (target[t * ROWS + r] - y) * (target[t * ROWS + r] - y);
            }
        }
        return error;
    }

    private static double[] gram(double[] x, int n) {
        double[] g = new double[n * n];
        for (int t = 0; t < TOKENS; t++) {
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    g[i * n + j] += x[t * n + i] * x[t * n + j];
                }
            }
        }
        return g;
    }
}
