package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.model.LayerWidths;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.Arrays;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PlannerTest {

    /** 3 layers of 10 MLP neurons and 4 query heads over 2 KV heads. */
    private static final LayerWidths WIDTHS = new LayerWidths(new int[] {10, 10, 10}, new int[] {4, 4, 4}, new int[] {2, 2, 2});

    private static double[] descendingFrom(int n, int top) {
        double[] s = new double[n];
        for (int i = 0; i < n; i++) {
            s[i] = n - Math.abs(i - top); // highest at index top
        }
        return s;
    }

    private static Scores scores(double[][] mlp, double[][] heads) {
        return new Scores(Criterion.ENTROPY, 4, 128, mlp, heads);
    }

    private static double[][] repeat(double[] layer, int n) {
        double[][] out = new double[n][];
        Arrays.setAll(out, i -> layer.clone());
        return out;
    }

    @Test
    void uniformKeepsTheHighestScoresInEveryLayer() {
        double[] mlp = {0.5, 0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.4, 0.6, 0.0};
        double[] heads = {1, 1, 5, 5}; // KV groups: 2 and 10
        PrunePlan plan = Planner.plan(WIDTHS, scores(repeat(mlp, 3), repeat(heads, 3)), PruneOptions.uniform(0.3, 0.5));
        for (LayerPlan p : plan.layers()) {
            assertArrayEquals(new int[] {0, 2, 3, 4, 6, 7, 8}, p.keptMlp(), "the 7 best, ascending");
            assertArrayEquals(new int[] {1}, p.keptKvGroups());
            assertArrayEquals(new int[] {2, 3}, p.keptHeads(), "a KV group keeps all its query heads");
        }
        assertEquals(new LayerWidths(new int[] {7, 7, 7}, new int[] {2, 2, 2}, new int[] {1, 1, 1}), plan.prunedWidths());
        assertEquals(WIDTHS, plan.originalWidths());
    }

    @Test
    void kvGroupScoreIsTheSumOfItsQueryHeads() {
        // head 0 alone is the best head, but group 1 (heads 2, 3) has the larger sum
        double[][] heads = repeat(new double[] {9, 0, 5, 5}, 3);
        PrunePlan plan = Planner.plan(WIDTHS, scores(repeat(descendingFrom(10, 0), 3), heads), PruneOptions.uniform(0, 0.5));
        assertArrayEquals(new int[] {1}, plan.layer(0).keptKvGroups());
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, plan.layer(0).keptMlp(), "mlp ratio 0 keeps everything");
    }

    @Test
    void tiesGoToTheLowerIndex() {
        PrunePlan plan = Planner.plan(WIDTHS, scores(repeat(new double[10], 3), repeat(new double[4], 3)),
                PruneOptions.uniform(0.4, 0.5));
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5}, plan.layer(1).keptMlp());
        assertArrayEquals(new int[] {0}, plan.layer(1).keptKvGroups());
    }

    @Test
    void roundToRoundsTheKeptWidthToTheNearestMultiple() {
        Scores s = scores(repeat(descendingFrom(10, 9), 3), repeat(new double[] {1, 2, 3, 4}, 3));
        assertEquals(7, keptMlp(s, PruneOptions.uniform(0.3, 0)), "no rounding");
        assertEquals(8, keptMlp(s, PruneOptions.uniform(0.3, 0).withRoundTo(4)), "7 → 8");
        assertEquals(6, keptMlp(s, PruneOptions.uniform(0.3, 0).withRoundTo(3)), "7 → 6");
        assertEquals(5, keptMlp(s, PruneOptions.uniform(0.9, 0).withRoundTo(5)), "1 → at least 5");
        assertEquals(10, keptMlp(s, PruneOptions.uniform(0.3, 0).withRoundTo(16)), "at most the original width");
        // the kept neurons are still the best ones
        assertArrayEquals(new int[] {2, 3, 4, 5, 6, 7, 8, 9},
                Planner.plan(WIDTHS, s, PruneOptions.uniform(0.3, 0).withRoundTo(4)).layer(0).keptMlp());
        assertEquals(64, Planner.roundTo(70, 64, 100, 1));
        assertEquals(100, Planner.roundTo(97, 64, 100, 1));
        assertEquals(16, Planner.roundTo(9, 8, 100, 10), "raised to the next multiple above the floor");
    }

    private static int keptMlp(Scores s, PruneOptions o) {
        return Planner.plan(WIDTHS, s, o).layer(0).keptMlp().length;
    }

    @Test
    void skippedLayersAreUntouched() {
        Scores s = scores(repeat(descendingFrom(10, 3), 3), repeat(new double[] {1, 2, 3, 4}, 3));
        PrunePlan plan = Planner.plan(WIDTHS, s, PruneOptions.uniform(0.5, 0.5).withSkipLayers(Set.of(1)));
        assertTrue(plan.layer(1).isUntouched());
        assertEquals(5, plan.layer(0).keptMlp().length);
        assertEquals(5, plan.layer(2).keptMlp().length);
        assertEquals(1, plan.layer(2).keptKvGroups().length);

        PrunePlan global = Planner.plan(WIDTHS, s, PruneOptions.uniform(0.5, 0.5).withSkipLayers(Set.of(0, 2))
                .withAllocation(Allocation.GLOBAL));
        assertTrue(global.layer(0).isUntouched() && global.layer(2).isUntouched());
        assertEquals(5, global.layer(1).keptMlp().length, "the ratio applies to the pruned layers");
    }

    @Test
    void globalAllocationTakesMoreFromLayersWhoseScoresAreConcentrated() {
        double[] concentrated = {100, 90, 1, 1, 1, 1, 1, 1, 1, 1};
        double[] flat = {10, 10, 10, 10, 10, 10, 10, 10, 10, 10};
        double[][] mlp = {concentrated, flat, flat};
        double[][] heads = {{1, 1, 1, 1}, {10, 10, 1, 1}, {5, 5, 5, 5}};
        PruneOptions o = PruneOptions.uniform(0.4, 0.5).withAllocation(Allocation.GLOBAL).withMinKeepFraction(0.2);
        PrunePlan plan = Planner.plan(WIDTHS, scores(mlp, heads), o);
        int[] kept = plan.layers().stream().mapToInt(p -> p.keptMlp().length).toArray();
        assertEquals(30 - 12, Arrays.stream(kept).sum(), "40% of all 30 neurons removed");
        // layer 0's eight small scores (1/198 each) are the lowest normalized scores, but its floor (20% = 2) keeps two;
        // the other four come from the flat layers, whose ties (0.1 each) go from the later layer first
        assertArrayEquals(new int[] {2, 10, 6}, kept);
        assertArrayEquals(new int[] {0, 1}, plan.layer(0).keptMlp());
        // 50% of 6 KV groups = 3 removed: layer 1's group 1 (2/22), then ties at 0.5 go from the later layer first
        int[] keptKv = plan.layers().stream().mapToInt(p -> p.keptKvGroups().length).toArray();
        assertEquals(3, Arrays.stream(keptKv).sum());
        assertArrayEquals(new int[] {0}, plan.layer(1).keptKvGroups());
        assertArrayEquals(new int[] {1, 1, 1}, keptKv, "at least one KV group per layer");
        assertArrayEquals(new int[] {0}, plan.layer(2).keptKvGroups(), "ties keep the lower index");
    }

    @Test
    void globalRoundsEachLayerAndRespectsTheFloor() {
        LayerWidths w = new LayerWidths(new int[] {64, 64}, new int[] {4, 4}, new int[] {2, 2});
        double[] small = new double[64];
        Arrays.fill(small, 1);
        small[0] = 1000;
        double[] flat = new double[64];
        Arrays.fill(flat, 1);
        Scores s = scores(new double[][] {small, flat}, new double[][] {{1, 1, 1, 1}, {1, 1, 1, 1}});
        PrunePlan plan = Planner.plan(w, s, PruneOptions.uniform(0.5, 0).withAllocation(Allocation.GLOBAL).withRoundTo(8));
        // floor 10% of 64 = 7 → rounded up to 8; layer 1 keeps 64 − (64 − 57) = 57 → 56
        assertEquals(8, plan.layer(0).keptMlp().length);
        assertEquals(56, plan.layer(1).keptMlp().length);
    }

    @Test
    void globalRefusesARatioTheFloorForbids() {
        Scores s = scores(repeat(descendingFrom(10, 0), 3), repeat(new double[] {1, 2, 3, 4}, 3));
        assertFails(() -> Planner.plan(WIDTHS, s, PruneOptions.uniform(0.9, 0).withAllocation(Allocation.GLOBAL)
                .withMinKeepFraction(0.5)), "cannot remove 27 MLP neurons", "at most 15");
    }

    @Test
    void attentionRatioMustRemoveWholeKvGroups() {
        LayerWidths w = new LayerWidths(new int[] {10, 10}, new int[] {8, 8}, new int[] {4, 4});
        Scores s = scores(repeat(new double[10], 2), repeat(new double[8], 2));
        assertFails(() -> Planner.plan(w, s, PruneOptions.uniform(0, 0.3)),
                "--attn-ratio 0.3 does not remove a whole number of KV groups", "each layer has 4 KV groups",
                "2 query heads", "allowed ratios are 0, 0.25, 0.5, 0.75");
        assertEquals(3, Planner.plan(w, s, PruneOptions.uniform(0, 0.25)).layer(0).keptKvGroups().length);
        // global: 8 groups in all, so multiples of 1/8
        assertFails(() -> Planner.plan(w, s, PruneOptions.uniform(0, 0.25 + 0.1).withAllocation(Allocation.GLOBAL)),
                "8 KV groups in all", "0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875");
        assertEquals(5, Planner.plan(w, s, PruneOptions.uniform(0, 0.375).withAllocation(Allocation.GLOBAL))
                .layers().stream().mapToInt(p -> p.keptKvGroups().length).sum());
        assertTrue(Planner.allowedRatios(48).contains("multiples of 1/48"));
        // a ratio typed as listed, to 4 decimals, is accepted
        LayerWidths six = new LayerWidths(new int[] {10}, new int[] {6}, new int[] {6});
        assertEquals(5, Planner.plan(six, scores(new double[][] {new double[10]}, new double[][] {new double[6]}),
                PruneOptions.uniform(0, 0.1667)).layer(0).keptKvGroups().length);
    }

    @Test
    void ratiosOutsideZeroToOneAreRefused() {
        assertFails(() -> PruneOptions.uniform(1.0, 0), "--mlp-ratio must be in [0, 1)", "1.0");
        assertFails(() -> PruneOptions.uniform(-0.1, 0), "--mlp-ratio must be in [0, 1)");
        assertFails(() -> PruneOptions.uniform(0.2, Double.NaN), "--attn-ratio must be in [0, 1)");
        assertFails(() -> PruneOptions.uniform(0.2, 0).withRoundTo(0), "--round-to must be at least 1");
        assertFails(() -> PruneOptions.uniform(0.2, 0).withMinKeepFraction(1.5), "--min-keep");
        assertFails(() -> PruneOptions.uniform(0.2, 0).withSkipLayers(Set.of(-1)), "--skip-layers");
    }

    @Test
    void scoresOfAnotherShapeAreRefused() {
        assertFails(() -> Planner.plan(WIDTHS, scores(repeat(new double[10], 2), repeat(new double[4], 2)),
                PruneOptions.uniform(0.2, 0)), "the scores cover 2 layers but the model has 3");
        assertFails(() -> Planner.plan(WIDTHS, scores(repeat(new double[9], 3), repeat(new double[4], 3)),
                PruneOptions.uniform(0.2, 0)), "layer 0", "9 MLP scores", "10 neurons");
        assertFails(() -> Planner.plan(WIDTHS, scores(repeat(new double[10], 3), repeat(new double[8], 3)),
                PruneOptions.uniform(0.2, 0)), "layer 0", "8 attention scores", "4 query heads");
        double[][] nan = repeat(new double[10], 3);
        nan[2][5] = Double.NaN;
        assertFails(() -> Planner.plan(WIDTHS, scores(nan, repeat(new double[4], 3)), PruneOptions.uniform(0.2, 0)),
                "layer 2", "score 5 is NaN");
        assertFails(() -> Planner.plan(WIDTHS, scores(repeat(new double[10], 3), repeat(new double[4], 3)),
                PruneOptions.uniform(0.2, 0).withSkipLayers(Set.of(3))), "--skip-layers: layer 3 does not exist", "0 to 2");
    }

    @Test
    void scoresOfAnotherModelAreRefused() {
        ScoresCheck.requireSameModel("a", "ABC123", "a", "abc123");
        assertFails(() -> ScoresCheck.requireSameModel("stories260K", "270cba1bd5109f42d0335", "babyllama", "7c709cb25d76b0cad30289"),
                "computed for another model", "stories260K", "270cba1bd510", "babyllama", "7c709cb25d76");
    }

    static void assertFails(Executable action, String... fragments) {
        HfpruneException e = assertThrows(HfpruneException.class, action);
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "message lacks \"" + f + "\": " + e.getMessage());
        }
    }
}
