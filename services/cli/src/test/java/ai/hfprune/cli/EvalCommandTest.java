package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.eval.Evaluator;
import ai.hfprune.engine.eval.Perplexity;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code hfprune eval} on stories260K from the assets: the eval.json contract and the rejection of bad input. */
class EvalCommandTest {

    @TempDir
    Path tmp;

    private static Path stories260K() {
        return Assets.resolve(Assets.DEFAULT_MODEL);
    }

    private static Path validText() {
        return Assets.resolve(Assets.DEFAULT_EVALUATION);
    }

    /** Runs the command and returns what it printed on standard output; a failure throws. */
    private static String run(String... args) {
        EvalCommand command = new EvalCommand();
        CommandLine cli = new CommandLine(command);
        StringWriter out = new StringWriter();
        cli.setOut(new PrintWriter(out, true));
        cli.parseArgs(args);
        command.call();
        return out.toString();
    }

    @Test
    void writesEvalJsonWithReferenceAndTasks() throws Exception {
        Path out = tmp.resolve("eval.json");
        String printed = run("--model", stories260K().toString(), "--reference", stories260K().toString(),
                "--data", validText().toString(), "--seq-len", "64", "--max-windows", "4", "--batch-windows", "3",
                "--tasks", "boolq,hellaswag,winogrande", "--limit", "3", "--out", out.toString());

        JsonNode root = new ObjectMapper().readTree(out.toFile());
        assertEquals("hfprune.eval/1", root.get("format").asText());
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(stories260K())));
        assertEquals("stories260K", root.get("model").get("name").asText());
        assertEquals(sha, root.get("model").get("sha256").asText());
        assertEquals(sha, root.get("reference").get("sha256").asText());
        assertEquals(validText().toString(), root.get("data").asText());
        assertEquals(64, root.get("seq_len").asInt());
        assertEquals(4, root.get("windows").asInt());
        assertEquals(4 * 63, root.get("tokens").asInt());

        Perplexity expected;
        try (Checkpoint checkpoint = Checkpoint.open(stories260K()); LlamaModel model = checkpoint.load()) {
            int[][] windows = CalibrationData.readWindows(validText(), checkpoint::tokenizer, 512, 64, 4);
            expected = Evaluator.perplexity(model, windows, 4);
        }
        assertEquals(expected.perplexity(), root.get("perplexity").asDouble(), 1e-6 * expected.perplexity());
        assertEquals(Math.log(root.get("perplexity").asDouble()), root.get("nll").asDouble(), 1e-9);
        assertEquals(0.0, root.get("kl").asDouble(), 1e-6);
        assertEquals(1.0, root.get("top1").asDouble());
        assertEquals(4 * 64, root.get("positions").asInt());

        List<String> names = new ArrayList<>();
        root.get("tasks").fieldNames().forEachRemaining(names::add);
        assertEquals(List.of("boolq", "hellaswag", "winogrande"), names);
        for (String name : names) {
            JsonNode t = root.get("tasks").get(name);
            assertEquals(3, t.get("n").asInt());
            for (String key : new String[] {"acc", "acc_norm"}) {
                double acc = t.get(key).asDouble();
                assertEquals(Math.round(acc * 3), acc * 3, 1e-9, name + " " + key + " is a count over 3 items");
                assertEquals(Math.sqrt(acc * (1 - acc) / 2), t.get(key + "_stderr").asDouble(), 1e-12);
            }
            assertTrue(printed.contains(name), printed);
        }
        assertTrue(printed.contains("perplexity") && printed.contains("top-1 agreement 1.0000"), printed);
    }

    @Test
    void defaultsToTheValidationTextWithoutTasksOrReference() throws Exception {
        Path out = tmp.resolve("sub/eval.json");
        run("--seq-len", "32", "--max-windows", "2", "--out", out.toString());
        JsonNode root = new ObjectMapper().readTree(out.toFile());
        assertEquals("stories260K", root.get("model").get("name").asText());
        assertTrue(root.get("data").asText().endsWith("valid-hf-head.txt"), root.get("data").asText());
        assertEquals(2 * 31, root.get("tokens").asInt());
        assertTrue(root.get("perplexity").asDouble() > 1);
        assertFalse(root.has("reference") || root.has("kl") || root.has("tasks"), root.toString());
    }

    @Test
    void badInputIsRejectedWithOneMessage() throws Exception {
        String o = tmp.resolve("eval.json").toString();
        assertMessage("--limit must be at least 1", "--tasks", "boolq", "--limit", "0", "--out", o);
        assertMessage("does not exist", "--data", tmp.resolve("missing.txt").toString(), "--out", o);
        assertMessage("unknown task \"mmlu\"", "--tasks", "boolq,mmlu", "--out", o);
        Path bad = Files.writeString(tmp.resolve("bad.jsonl"), "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n{oops}\n");
        assertMessage(bad + ":2:", "--tasks", bad.toString(), "--out", o);
        assertMessage("vocabulary of 105 tokens", "--reference",
                Assets.resolve("models/babyllama-tok105/babyllama-tok105.gguf").toString(), "--max-windows", "1", "--out", o);
        assertFalse(Files.exists(Path.of(o)), "nothing is written on bad input");
    }

    private static void assertMessage(String expected, String... args) {
        HfpruneException e = assertThrows(HfpruneException.class, () -> run(args));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }
}
