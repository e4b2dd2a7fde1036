package ai.hfprune.tests;

import ai.hfprune.engine.testing.Assets;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code hfprune score} end to end: the scores.json contract of the issue, for every criterion. */
class ScoreCommandTest {

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"entropy", "ce", "activation", "magnitude", "random"})
    void writesScoresJson(String criterion) throws Exception {
        Path model = Assets.stories260K();
        Path out = tmp.resolve("scores.json");
        Cli cli = Cli.run("score", "--model", model.toString(),
                "--data", Assets.require("data/tinystories/train-head-2MiB.txt").toString(),
                "--criterion", criterion, "--seq-len", "32", "--max-windows", "6", "--batch-windows", "4",
                "--out", out.toString());
        assertEquals(0, cli.exitCode(), cli.err());

        JsonNode root = new ObjectMapper().readTree(out.toFile());
        assertEquals("hfprune.scores/1", root.get("format").asText());
        assertEquals("stories260K", root.get("model").get("name").asText());
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(model)));
        assertEquals(sha, root.get("model").get("sha256").asText());
        assertEquals(criterion, root.get("criterion").asText());
        assertEquals(6, root.get("windows").asInt());
        assertEquals(32, root.get("seq_len").asInt());
        assertEquals(6 * 32, root.get("tokens").asInt());
        assertEquals(5, root.get("layers").size());
        for (int l = 0; l < 5; l++) {
            JsonNode layer = root.get("layers").get(l);
            assertEquals(l, layer.get("index").asInt());
            assertEquals(172, layer.get("mlp").size());
            assertEquals(8, layer.get("heads").size());
            double sum = 0;
            for (JsonNode v : layer.get("mlp")) {
                assertTrue(Double.isFinite(v.asDouble()) && v.asDouble() >= 0, "score " + v);
                sum += v.asDouble();
            }
            assertTrue(sum > 0, "layer " + l + " scores are all zero");
        }
    }

    @Test
    void helpForEveryCommand() {
        for (String command : new String[] {"generate", "score", "bench"}) {
            Cli cli = Cli.run(command, "--help");
            assertEquals(0, cli.exitCode(), command);
            assertTrue(cli.out().contains("Usage: hfprune " + command), cli.out());
        }
    }
}
