package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.model.LayerWidths;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * Builds a {@link PrunePlan} from finalized scores: how many MLP neurons and KV groups each layer keeps
 * ({@link Allocation}), then which ones (the highest scores; ties to the lower index). A KV group's score is the sum
 * of its query heads' scores ({@link Scores#kvGroups}).
 */
public final class Planner {
    private Planner() {
    }

    /** How many MLP neurons and KV groups each layer keeps. */
    private record Counts(int[] mlp, int[] kv) {
    }

    /** @param widths the model's current layer widths (a model pruned before may already differ per layer) */
    public static PrunePlan plan(LayerWidths widths, Scores scores, PruneOptions options) {
        ScoresCheck.requireShapes(scores, widths);
        int n = widths.numLayers();
        for (int skip : options.skipLayers()) {
            if (skip >= n) {
                throw new HfpruneException("--skip-layers: layer " + skip + " does not exist (the model has " + n
                        + " layers, 0 to " + (n - 1) + ")");
            }
        }
        double[][] kvScores = new double[n][];
        for (int l = 0; l < n; l++) {
            kvScores[l] = scores.kvGroups(l, widths.numKeyValueHeads(l));
        }
        Counts kept = options.allocation() == Allocation.UNIFORM
                ? uniformCounts(widths, options)
                : globalCounts(widths, scores.mlp(), kvScores, options);

        List<LayerPlan> layers = new ArrayList<>(n);
        for (int l = 0; l < n; l++) {
            layers.add(new LayerPlan(l, widths.intermediateSize(l), Ranking.keepTop(scores.mlp()[l], kept.mlp()[l]),
                    widths.numKeyValueHeads(l), Ranking.keepTop(kvScores[l], kept.kv()[l]), groupSize(widths, l)));
        }
        return new PrunePlan(options, layers);
    }

    /** Every pruned layer loses the same fraction of its own width. */
    private static Counts uniformCounts(LayerWidths widths, PruneOptions options) {
        int n = widths.numLayers();
        Counts kept = new Counts(new int[n], new int[n]);
        for (int l = 0; l < n; l++) {
            int width = widths.intermediateSize(l);
            int kv = widths.numKeyValueHeads(l);
            if (options.skips(l)) {
                kept.mlp()[l] = width;
                kept.kv()[l] = kv;
                continue;
            }
            int removed = (int) Math.round(options.mlpRatio() * width);
            kept.mlp()[l] = roundTo(Math.max(1, width - removed), options.roundTo(), width, 1);
            kept.kv()[l] = kv - wholeGroups(options.attnRatio(), kv, kvContext(widths, l));
        }
        return kept;
    }

    /** The pruned layers together lose the given fraction, spread by one normalized ranking ({@link GlobalAllocation}). */
    private static Counts globalCounts(LayerWidths widths, double[][] mlpScores, double[][] kvScores, PruneOptions options) {
        int n = widths.numLayers();
        boolean[] eligible = new boolean[n];
        int[] mlpFloors = new int[n];
        int[] kvFloors = new int[n];
        int totalMlp = 0;
        int totalKv = 0;
        int layers = 0;
        for (int l = 0; l < n; l++) {
            eligible[l] = !options.skips(l);
            mlpFloors[l] = floor(options.minKeepFraction(), widths.intermediateSize(l));
            kvFloors[l] = floor(options.minKeepFraction(), widths.numKeyValueHeads(l));
            if (eligible[l]) {
                totalMlp += widths.intermediateSize(l);
                totalKv += widths.numKeyValueHeads(l);
                layers++;
            }
        }
        int[] mlp = GlobalAllocation.keptCounts(mlpScores, eligible, (int) Math.round(options.mlpRatio() * totalMlp),
                mlpFloors, "MLP neurons (--mlp-ratio " + options.mlpRatio() + ")");
        int removeKv = wholeGroups(options.attnRatio(), totalKv,
                "the " + layers + " pruned layers have " + totalKv + " KV groups in all");
        int[] kv = GlobalAllocation.keptCounts(kvScores, eligible, removeKv, kvFloors,
                "KV groups (--attn-ratio " + options.attnRatio() + ")");
        for (int l = 0; l < n; l++) {
            if (eligible[l]) {
                mlp[l] = roundTo(mlp[l], options.roundTo(), widths.intermediateSize(l), mlpFloors[l]);
            }
        }
        return new Counts(mlp, kv);
    }

    private static int groupSize(LayerWidths widths, int layer) {
        return widths.numAttentionHeads(layer) / widths.numKeyValueHeads(layer);
    }

    /**
     * {@code kept} rounded to the nearest multiple of {@code k}, at least {@code k}, raised to the next multiple if that
     * falls below {@code floor}, and never above {@code width}.
     */
    static int roundTo(int kept, int k, int width, int floor) {
        int r = Math.max(k, (int) Math.round((double) kept / k) * k);
        if (r < floor) {
            r = (floor + k - 1) / k * k;
        }
        return Math.min(width, r);
    }

    /** The fewest units a layer keeps under global allocation: the fraction of its width, at least one. */
    static int floor(double fraction, int width) {
        return Math.min(width, Math.max(1, (int) Math.ceil(fraction * width - 1e-9)));
    }

    /** The KV groups {@code ratio} removes out of {@code groups}, refusing a ratio that does not remove whole groups. */
    private static int wholeGroups(double ratio, int groups, String context) {
        double x = ratio * groups;
        long whole = Math.round(x);
        // Ratios are listed to 4 decimals below; one typed back as listed (0.1667 for 1/6) must be accepted.
        if (Math.abs(x - whole) > Math.max(1e-6, 5e-5 * groups)) {
            throw new HfpruneException("--attn-ratio " + ratio + " does not remove a whole number of KV groups: " + context
                    + ", so the allowed ratios are " + allowedRatios(groups));
        }
        return (int) whole;
    }

    private static String kvContext(LayerWidths widths, int layer) {
        int groupSize = groupSize(widths, layer);
        int kv = widths.numKeyValueHeads(layer);
        boolean alike = IntStream.range(0, widths.numLayers()).allMatch(l -> widths.numKeyValueHeads(l) == kv);
        return (alike ? "each layer has " : "layer " + layer + " has ") + kv
                + " KV groups (a key/value head with its " + groupSize + " query head" + (groupSize == 1 ? "" : "s") + ")";
    }

    static String allowedRatios(int groups) {
        if (groups <= 16) {
            return IntStream.range(0, groups).mapToObj(k -> decimal((double) k / groups)).collect(Collectors.joining(", "));
        }
        return "the multiples of 1/" + groups + " (" + decimal(1.0 / groups) + ") below 1";
    }

    private static String decimal(double v) {
        return BigDecimal.valueOf(v).setScale(4, RoundingMode.HALF_UP).stripTrailingZeros().toPlainString();
    }
}
