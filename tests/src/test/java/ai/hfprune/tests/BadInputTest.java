package ai.hfprune.tests;

import ai.hfprune.engine.testing.Assets;
import ai.hfprune.engine.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every bad input gets one clear message on stderr, exit status 1, no stack trace, and no output file. */
class BadInputTest {

    /** A word that starts with '/': the paths a message names (the tests give only absolute ones). */
    private static final Pattern ABSOLUTE_PATH = Pattern.compile("(?<![\\w.])/\\S*");

    @TempDir
    Path tmp;

    private Path out() {
        return tmp.resolve("scores.json");
    }

    /**
     * Runs the command and checks the refusal. {@code reason} must be in the message once every path is taken out of
     * it, so that a check passes on the reason alone: a file named truncated.gguf must not satisfy "truncated".
     * Returns the whole message, for checks of the file it names.
     */
    private String assertRefused(String reason, String... args) {
        Cli cli = Cli.run(args);
        assertEquals(1, cli.exitCode(), "exit status; stderr was: " + cli.err());
        String err = cli.err().strip();
        assertTrue(err.startsWith("hfprune: error: "), err);
        assertEquals(1, err.lines().count(), "one line, no stack trace: " + err);
        String withoutPaths = ABSOLUTE_PATH.matcher(err).replaceAll("<path>");
        assertTrue(withoutPaths.contains(reason), "message should give the reason '" + reason + "': " + withoutPaths);
        assertFalse(Files.exists(out()), "nothing may be written");
        try (var files = Files.list(tmp)) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().contains("scores")), "no temporary file left");
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        return err;
    }

    private Path tokenWindows() throws IOException {
        Path data = tmp.resolve("windows.json");
        Files.writeString(data, "[[1,2,3,4],[5,6,7,8]]");
        return data;
    }

    @Test
    void truncatedGguf() throws IOException {
        byte[] gguf = Files.readAllBytes(Assets.stories260K());
        Path truncated = tmp.resolve("a.gguf");
        Files.write(truncated, Arrays.copyOf(gguf, gguf.length / 2));
        assertRefused("truncated", "score", "--model", truncated.toString(), "--data", tokenWindows().toString(),
                "--seq-len", "4", "--out", out().toString());
    }

    @Test
    void ggufCutInsideItsHeader() throws IOException {
        byte[] gguf = Files.readAllBytes(Assets.stories260K());
        Path truncated = tmp.resolve("b.gguf");
        Files.write(truncated, Arrays.copyOf(gguf, 1000));
        assertRefused("truncated", "generate", "--model", truncated.toString(), "--prompt", "Hi");
    }

    @Test
    void corruptSafetensorsHeader() throws IOException {
        Path model = tmp.resolve("m");
        TinyCheckpoints.writeTinyRandom(model, "LlamaForCausalLM", 1, "F32", Long.MAX_VALUE);
        try (var ch = Files.newByteChannel(model.resolve("model.safetensors"), StandardOpenOption.WRITE)) {
            ch.position(8);
            ch.write(java.nio.ByteBuffer.wrap("#garbage!".getBytes()));
        }
        String err = assertRefused("header is not valid JSON", "score", "--model", model.toString(), "--data",
                tokenWindows().toString(), "--seq-len", "4", "--out", out().toString());
        assertTrue(err.contains(model.resolve("model.safetensors").toString()), "the message names the file: " + err);
    }

    @Test
    void weightShapeContradictsConfig() throws IOException {
        Path model = tmp.resolve("m");
        TinyCheckpoints.writeTinyRandom(model, "LlamaForCausalLM", 1, "F32", Long.MAX_VALUE);
        Path config = model.resolve("config.json");
        String json = Files.readString(config);
        Files.writeString(config, json.replaceFirst("\"hidden_size\"\\s*:\\s*\\d+", "\"hidden_size\" : 40"));
        assertRefused("shape", "score", "--model", model.toString(), "--data", tokenWindows().toString(),
                "--seq-len", "4", "--out", out().toString());
    }

    @Test
    void ropeScalingHfpruneCannotComputeIsRefused() throws IOException {
        Path model = tmp.resolve("m");
        TinyCheckpoints.writeTinyRandom(model, "LlamaForCausalLM", 1, "F32", Long.MAX_VALUE);
        Path config = model.resolve("config.json");
        String json = Files.readString(config);
        Files.writeString(config, json.replaceFirst("\"rope_scaling\"\\s*:\\s*null",
                "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}"));
        assertRefused("rope_scaling type 'yarn' is not supported", "score", "--model", model.toString(),
                "--data", tokenWindows().toString(), "--seq-len", "4", "--out", out().toString());
        Files.writeString(config, json.replaceFirst("\"rope_scaling\"\\s*:\\s*null",
                "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0}"));
        assertRefused("lacks high_freq_factor", "generate", "--model", model.toString(), "--prompt", "Hi");
    }

    @Test
    void ggufExportOfWhatGgufCannotHold() throws IOException {
        Path qwen3 = tmp.resolve("qwen3");
        TinyCheckpoints.writeTinyRandom(qwen3, "Qwen3ForCausalLM", 1, "F32", Long.MAX_VALUE);
        assertRefused("q/k norms", "prune", "--model", qwen3.toString(), "--criterion", "magnitude", "--mlp-ratio", "0.25",
                "--compensate", "none", "--format", "both", "--out", out().toString());
        Path llama = tmp.resolve("llama");
        TinyCheckpoints.writeTinyRandom(llama, "LlamaForCausalLM", 1, "F32", Long.MAX_VALUE);
        assertRefused("has no tokenizer.json to convert", "prune", "--model", llama.toString(), "--criterion", "magnitude",
                "--mlp-ratio", "0.25", "--compensate", "none", "--format", "gguf", "--out", out().toString());
        assertRefused("unknown format 'onnx' (choose hf, gguf or both)", "prune", "--model", llama.toString(),
                "--criterion", "magnitude", "--mlp-ratio", "0.25", "--format", "onnx", "--out", out().toString());
        assertRefused("choose f32, f16 or q8_0", "prune", "--model", llama.toString(), "--criterion", "magnitude",
                "--mlp-ratio", "0.25", "--format", "gguf", "--gguf-type", "q4_k", "--out", out().toString());
    }

    @Test
    void unsupportedArchitecture() throws IOException {
        Path model = tmp.resolve("m");
        TinyCheckpoints.writeTinyRandom(model, "LlamaForCausalLM", 1, "F32", Long.MAX_VALUE);
        Path config = model.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("LlamaForCausalLM", "GPT2LMHeadModel"));
        assertRefused("unsupported architecture", "score", "--model", model.toString(), "--data",
                tokenWindows().toString(), "--seq-len", "4", "--out", out().toString());
    }

    @Test
    void unknownCriterion() throws IOException {
        assertRefused("unknown criterion 'fisher'", "score", "--model", Assets.stories260K().toString(),
                "--data", tokenWindows().toString(), "--criterion", "fisher", "--seq-len", "4", "--out", out().toString());
    }

    @Test
    void unknownScoringMemoryMode() throws IOException {
        assertRefused("unknown scoring memory mode 'swap'", "score", "--model", Assets.stories260K().toString(),
                "--data", tokenWindows().toString(), "--memory", "swap", "--seq-len", "4", "--out", out().toString());
    }

    @Test
    void unknownBenchShape() {
        assertRefused("unknown shape 'gpt-5'", "bench", "score", "--shape", "gpt-5");
    }

    @Test
    void emptyDataFile() throws IOException {
        Path empty = Files.writeString(tmp.resolve("c.txt"), "\n<|endoftext|>\n  \n");
        assertRefused("contains no text", "score", "--model", Assets.stories260K().toString(),
                "--data", empty.toString(), "--seq-len", "16", "--out", out().toString());
    }

    @Test
    void dataThatIsADirectory() throws IOException {
        Path folder = Files.createDirectory(tmp.resolve("e"));
        assertRefused("is a directory", "score", "--model", Assets.stories260K().toString(),
                "--data", folder.toString(), "--seq-len", "16", "--out", out().toString());
    }

    @Test
    void dataThatIsNotUtf8() throws IOException {
        Path latin1 = Files.write(tmp.resolve("f.txt"), "Once upon a time, a caf\u00e9.".getBytes(StandardCharsets.ISO_8859_1));
        assertRefused("is not valid UTF-8: the byte at offset 23 (0xE9)", "score", "--model", Assets.stories260K().toString(),
                "--data", latin1.toString(), "--seq-len", "4", "--out", out().toString());
    }

    @Test
    void seqLenLongerThanTheData() throws IOException {
        Path small = Files.writeString(tmp.resolve("d.txt"), "Once upon a time, there was a cat.");
        assertRefused("fewer than one window", "score", "--model", Assets.stories260K().toString(),
                "--data", small.toString(), "--seq-len", "512", "--out", out().toString());
    }

    @Test
    void tokenIdOutsideTheVocabulary() throws IOException {
        Path data = Files.writeString(tmp.resolve("ids.json"), "[[1, 2, 99999, 4]]");
        assertRefused("not a token id", "score", "--model", Assets.stories260K().toString(),
                "--data", data.toString(), "--seq-len", "4", "--out", out().toString());
    }

    @Test
    void nonNumericOptionValue() {
        assertRefused("Invalid value for option '--mlp-ratio': 'abc' is not a double", "prune", "--model",
                Assets.stories260K().toString(), "--mlp-ratio", "abc", "--out", tmp.resolve("pruned").toString());
    }

    @Test
    void unknownOption() {
        assertRefused("Unknown option: '--bogus'", "score", "--bogus", "--out", out().toString());
    }

    @Test
    void scoresOntoAnExistingFileOnlyWithForce() throws IOException {
        Path earlier = Files.writeString(tmp.resolve("earlier.json"), "an earlier result");
        String[] score = {"score", "--model", Assets.stories260K().toString(), "--data", tokenWindows().toString(),
            "--seq-len", "4", "--out", earlier.toString()};
        assertRefused("exists (use --force to replace it)", score);
        assertEquals("an earlier result", Files.readString(earlier), "the earlier file is left alone");

        Cli forced = Cli.run(concat(score, "--force"));
        assertEquals(0, forced.exitCode(), forced.err());
        assertTrue(Files.readString(earlier).contains("\"format\""), "replaced by the scores");
    }

    @Test
    void evaluatesOntoAnExistingFileOnlyWithForce() throws IOException {
        Path earlier = Files.writeString(tmp.resolve("earlier-eval.json"), "an earlier evaluation");
        String[] eval = {"eval", "--model", Assets.stories260K().toString(), "--max-windows", "2", "--out", earlier.toString()};
        assertRefused("exists (use --force to replace it)", eval);
        assertEquals("an earlier evaluation", Files.readString(earlier), "the earlier file is left alone");

        Cli forced = Cli.run(concat(eval, "--force"));
        assertEquals(0, forced.exitCode(), forced.err());
        assertTrue(Files.readString(earlier).contains("perplexity"), "replaced by the evaluation");
    }

    private static String[] concat(String[] args, String... more) {
        String[] all = Arrays.copyOf(args, args.length + more.length);
        System.arraycopy(more, 0, all, args.length, more.length);
        return all;
    }

    @Test
    void missingModel() {
        assertRefused("does not exist", "generate", "--model", tmp.resolve("nope.gguf").toString(), "--prompt", "Hi");
    }
}
