package ai.hfprune.tests;

import ai.hfprune.engine.testing.Assets;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Greedy decoding of the three real models reproduces the known-good continuations written in the assets' SOURCES.md
 * (stories260K: llama2.c's own output; babyllama-tok105: an independent float64 forward pass; stories3M: llama2.c, numpy
 * and llama.cpp agreeing). Generation runs with the KV cache.
 */
class GenerateGoldenTest {

    @ParameterizedTest
    @CsvSource({
        "models/stories260K/stories260K.gguf, stories260K, 80",
        "models/babyllama-tok105/babyllama-tok105.gguf, babyllama-tok105, 160",
        "models/stories3M/stories3M.gguf, stories3M, 100"})
    void greedyContinuationMatchesSources(String model, String name, int maxNewTokens) throws IOException {
        String expected = knownContinuation(name);
        Cli cli = Cli.run("generate", "--model", Assets.require(model).toString(),
                "--prompt", "Once upon a time", "--max-new-tokens", String.valueOf(maxNewTokens));
        assertEquals(0, cli.exitCode(), cli.err());
        String generated = cli.out().strip();
        assertTrue(generated.startsWith("Once upon a time" + expected),
                "expected \"Once upon a time" + expected + "\"\n but got \"" + generated + "\"");
    }

    /** The quoted continuation after "Known-good behaviour of NAME" in SOURCES.md. */
    private static String knownContinuation(String name) throws IOException {
        String sources = Files.readString(Assets.require("SOURCES.md")).replace('\n', ' ');
        Matcher m = Pattern.compile("Known-good behaviour of " + Pattern.quote(name) + ".*?continues\\s+\"([^\"]+)\"")
                .matcher(sources);
        assertTrue(m.find(), "SOURCES.md has no known-good continuation for " + name);
        return m.group(1);
    }
}
