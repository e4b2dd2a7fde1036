package ai.hfprune.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A smoke test of {@code hfprune bench pipeline} with tiny settings on the embedded broker: the table has its rows,
 * one of them from a scorer in a JVM of its own.
 * No timing is checked here (that is what the benchmark itself reports).
 */
class PipelineBenchCommandTest {

    @Test
    void printsOneRowPerConfiguration() {
        CommandLine cli = Main.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int status = cli.execute("bench", "pipeline", "--seq-len", "32", "--batch-windows", "2", "--batches", "3",
                "--warmup-batches", "1", "--scorers", "1,2", "--scorer-processes", "1", "--partitions", "2");
        String printed = out.toString();
        assertEquals(0, status, printed + err);
        // 3 batches x 2 windows x 32 tokens = 192 tokens in every row: tokens, seconds, tokens/s, ratio
        for (String row : List.of("scorer alone (no Kafka)", "pipeline, 1 scorer", "pipeline, 2 scorers",
                "pipeline, 1 scorer process")) {
            Pattern p = Pattern.compile("(?m)^" + Pattern.quote(row) + " +192 +[0-9.]+ +[0-9]+ +[0-9.]+ ");
            assertTrue(p.matcher(printed).find(), "no row '" + row + "' in:\n" + printed);
        }
        assertTrue(printed.contains("configuration"), printed);
        assertTrue(printed.contains("gradient lock"), printed);
    }
}
