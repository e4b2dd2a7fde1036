package ai.hfprune.cli;

import ai.hfprune.engine.report.ReportPage;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;

/**
 * The fidelity study's curves, drawn by {@code fidelity.js} from the same JSON that {@code --out} writes: KL and
 * perplexity against the fraction of parameters removed, one line per criterion × method, each point the mean over the
 * calibration sets.
 */
final class FidelityReportPage {
    private FidelityReportPage() {
    }

    /** Where the page goes without --report: beside --out, study.json → study.html. */
    static Path besides(Path json) {
        String name = json.getFileName().toString();
        String stem = name.endsWith(".json") ? name.substring(0, name.length() - ".json".length()) : name;
        return json.resolveSibling(stem + ".html");
    }

    static void write(Path file, JsonNode study) {
        ReportPage.write(file, ReportPage.html("hfprune fidelity study: " + study.at("/model/name").asText(),
                FidelityReportPage.class, "fidelity.js", study));
    }
}
