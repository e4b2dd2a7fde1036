package ai.hfprune.engine.report;

import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.prune.PruneReport;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.file.Path;

/**
 * {@code report.html} beside a pruned model: what {@code prune-report.json} holds (metrics against the dense model,
 * kept widths, which neurons were kept) and the per-layer distributions of the scores that chose the cut, drawn by
 * {@code prune.js}. The data is the report itself plus the scores, rounded to 4 significant digits.
 */
public final class PruneReportPage {
    private PruneReportPage() {
    }

    public static final String FILE = "report.html";
    private static final JsonMapper JSON = new JsonMapper();

    /** Writes {@code dir/report.html}; without scores (a report read back from disk) the distributions are left out. */
    public static void write(Path dir, PruneReport report) {
        ReportPage.write(dir.resolve(FILE), html(report));
    }

    public static String html(PruneReport report) {
        ObjectNode data = JSON.createObjectNode();
        data.set("report", report.json());
        Scores scores = report.scores();
        if (scores != null) {
            ObjectNode s = data.putObject("scores");
            s.put("criterion", scores.criterion().id());
            s.set("mlp", rounded(scores.mlp()));
            s.set("heads", rounded(scores.heads()));
        }
        String model = report.json().at("/input/name").asText();
        String version = report.json().has("pipeline") ? " v" + report.json().at("/pipeline/version").asInt() : "";
        return ReportPage.html("hfprune: " + model + version + " pruned with " + report.json().at("/scores/criterion").asText(),
                PruneReportPage.class, "prune.js", data);
    }

    private static ArrayNode rounded(double[][] perLayer) {
        ArrayNode layers = JSON.createArrayNode();
        for (double[] values : perLayer) {
            ArrayNode layer = layers.addArray();
            for (double v : values) {
                layer.add(ReportPage.round(v));
            }
        }
        return layers;
    }
}
