package ai.hfprune.cli;

import ai.hfprune.engine.importance.Criterion;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code hfprune bench fidelity} with tiny settings on stories260K: a row per setting, finite numbers, the JSON. */
class FidelityStudyCommandTest {

    @TempDir
    Path tmp;

    @Test
    void printsARowPerSettingWithFiniteNumbers() throws Exception {
        System.setProperty("ai.djl.offline", "true");
        Path json = tmp.resolve("study.json");
        CommandLine cli = Main.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int exit = cli.execute("bench", "fidelity", "--windows", "4", "--seq-len", "32", "--eval-windows", "4",
                "--batch-windows", "4", "--out", json.toString());
        assertEquals(0, exit, err.toString());

        String table = out.toString();
        assertTrue(table.contains("Dense perplexity: "), table);
        List<String> rows = table.lines().filter(l -> l.matches("\\| 0\\.\\d+ \\| 0\\.\\d+ \\|.*")).toList();
        assertEquals(3 * FidelityStudyCommand.SETTINGS.size(), rows.size(), table); // KL, top-1 and perplexity tables
        for (FidelityStudyCommand.Setting s : FidelityStudyCommand.SETTINGS) {
            String prefix = String.format(Locale.ROOT, "| %s | %s |", s.mlpRatio(), s.attnRatio());
            assertEquals(3, rows.stream().filter(r -> r.startsWith(prefix)).count(), prefix + "\n" + table);
        }
        for (String row : rows) {
            String[] cells = row.replace("**", "").split("\\|");
            // "", mlp, attn, params, then one cell per criterion
            assertEquals(4 + Criterion.values().length, cells.length, row);
            for (int i = 4; i < cells.length; i++) {
                double v = Double.parseDouble(cells[i].trim());
                assertTrue(Double.isFinite(v) && v >= 0, row);
            }
        }

        JsonNode root = new ObjectMapper().readTree(json.toFile());
        assertEquals(4, root.get("calibration").get("windows").asInt());
        assertEquals(4, root.get("evaluation").get("windows").asInt());
        assertTrue(Double.isFinite(root.get("dense").get("perplexity").asDouble()));
        JsonNode results = root.get("results");
        assertEquals(Criterion.values().length * FidelityStudyCommand.SETTINGS.size(), results.size());
        for (JsonNode r : results) {
            for (String key : List.of("perplexity", "kl", "top1")) {
                assertTrue(r.get(key).isNumber() && Double.isFinite(r.get(key).asDouble()), r.toString());
            }
            assertTrue(r.get("top1").asDouble() <= 1.0, r.toString());
        }
    }
}
