package ai.hfprune.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code hfprune bench fidelity} with tiny settings on stories260K: a row per setting and method, mean ± sd cells of
 * finite numbers, and the JSON with one result per criterion, setting, method and calibration set.
 */
class FidelityStudyCommandTest {

    @TempDir
    Path tmp;

    @Test
    void refusesAReportThatIsADirectoryBeforeAnyWork() throws Exception {
        CommandLine cli = Main.commandLine();
        StringWriter err = new StringWriter();
        cli.setErr(new PrintWriter(err, true));
        int exit = cli.execute("bench", "fidelity", "--report", tmp.toString(), "--out", tmp.resolve("study.json").toString());
        assertEquals(1, exit);
        assertTrue(err.toString().contains("hfprune: error: --report " + tmp + " is a directory"), err.toString());
        assertTrue(java.nio.file.Files.notExists(tmp.resolve("study.json")), "nothing written");
    }

    @Test
    void printsARowPerSettingAndMethodWithFiniteNumbers() throws Exception {
        System.setProperty("ai.djl.offline", "true");
        Path json = tmp.resolve("study.json");
        CommandLine cli = Main.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int exit = cli.execute("bench", "fidelity", "--windows", "4", "--calibration-sets", "2", "--seq-len", "32",
                "--eval-windows", "4", "--batch-windows", "4", "--criteria", "entropy,activation,magnitude",
                "--settings", "0.2,0.2:0.25", "--methods", "mask,lstsq,obs", "--out", json.toString());
        assertEquals(0, exit, err.toString());

        String table = out.toString();
        assertTrue(table.contains("Dense perplexity: ") && table.contains("2 sets of 4 windows"), table);
        List<String> rows = table.lines().filter(l -> l.matches("\\| 0\\.\\d+ \\| 0\\.?\\d* \\|.*")).toList();
        assertEquals(3 * 2 * 3, rows.size(), table); // KL, top-1 and perplexity tables × settings × methods
        for (String row : rows) {
            String[] cells = row.replace("**", "").split("\\|");
            // "", mlp, attn, params, method, then one cell per criterion: "mean ± sd"
            assertEquals(5 + 3, cells.length, row);
            assertTrue(Set.of("mask", "+refit", "obs+refit").contains(cells[4].trim()), row);
            if (cells[4].trim().equals("obs+refit")) { // uniform: every criterion's plan has the same counts, so one model
                assertEquals(cells[5].trim(), cells[6].trim(), row);
                assertEquals(cells[5].trim(), cells[7].trim(), row);
            }
            for (int i = 5; i < cells.length; i++) {
                String[] meanSd = cells[i].trim().split(" ± ");
                assertEquals(2, meanSd.length, row);
                for (String v : meanSd) {
                    double x = Double.parseDouble(v);
                    assertTrue(Double.isFinite(x) && x >= 0, row);
                }
            }
        }

        assertTrue(java.nio.file.Files.readString(tmp.resolve("study.html")).contains("hfprune fidelity study"),
                "the curves' page beside --out (opened in a browser by HtmlReportsTest)");
        JsonNode root = new ObjectMapper().readTree(json.toFile());
        assertEquals(4, root.get("calibration").get("windows").asInt());
        assertEquals(2, root.get("calibration").get("sets").asInt());
        assertEquals(4, root.get("evaluation").get("windows").asInt());
        assertTrue(Double.isFinite(root.get("dense").get("perplexity").asDouble()));
        JsonNode results = root.get("results");
        assertEquals(3 * 2 * 3 * 2, results.size()); // criteria × settings × methods × sets
        Set<String> distinct = new HashSet<>();
        for (JsonNode r : results) {
            for (String key : List.of("perplexity", "kl", "top1")) {
                assertTrue(r.get(key).isNumber() && Double.isFinite(r.get(key).asDouble()), r.toString());
            }
            assertTrue(r.get("top1").asDouble() <= 1.0, r.toString());
            distinct.add(r.get("criterion").asText() + r.get("mlp_ratio") + r.get("attn_ratio") + r.get("method")
                    + r.get("calibration_set"));
        }
        assertEquals(results.size(), distinct.size(), "one result per criterion, setting, method and set");
    }
}
