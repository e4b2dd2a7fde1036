package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.model.LayerWidths;

/** Refuses scores that were not computed for the model about to be pruned. */
public final class ScoresCheck {
    private ScoresCheck() {
    }

    /** The scores file names the model it scored by sha256 ({@code Checkpoint.sha256()}); it must be this one. */
    public static void requireSameModel(String scoresModelName, String scoresSha256, String modelName, String modelSha256) {
        if (!modelSha256.equalsIgnoreCase(scoresSha256)) {
            throw new HfpruneException("the scores were computed for another model: '" + scoresModelName + "' (sha256 "
                    + abbreviate(scoresSha256) + "), but the model to prune is '" + modelName + "' (sha256 "
                    + abbreviate(modelSha256) + "); score this model first (hfprune score)");
        }
    }

    /** One finite score per MLP neuron and per query head of every layer. */
    public static void requireShapes(Scores scores, LayerWidths widths) {
        int n = widths.numLayers();
        if (scores.mlp().length != n || scores.heads().length != n) {
            throw new HfpruneException("the scores cover " + scores.mlp().length + " layers but the model has " + n);
        }
        for (int l = 0; l < n; l++) {
            requireLayer(l, "MLP", scores.mlp()[l], widths.intermediateSize(l), "neurons");
            requireLayer(l, "attention", scores.heads()[l], widths.numAttentionHeads(l), "query heads");
        }
    }

    private static void requireLayer(int layer, String what, double[] values, int expected, String unit) {
        if (values.length != expected) {
            throw new HfpruneException("layer " + layer + ": the scores have " + values.length + " " + what
                    + " scores but the model's layer has " + expected + " " + unit);
        }
        for (int i = 0; i < values.length; i++) {
            if (!Double.isFinite(values[i])) {
                throw new HfpruneException("layer " + layer + ": " + what + " score " + i + " is " + values[i]);
            }
        }
    }

    private static String abbreviate(String sha) {
        return sha == null || sha.length() <= 12 ? String.valueOf(sha) : sha.substring(0, 12) + "…";
    }
}
