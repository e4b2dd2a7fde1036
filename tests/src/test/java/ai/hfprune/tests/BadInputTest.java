package ai.hfprune.tests;

import ai.hfprune.engine.testing.Assets;
import ai.hfprune.engine.testing.TinyCheckpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every bad input gets one clear message on stderr, exit status 1, no stack trace, and no output file. */
class BadInputTest {

    @TempDir
    Path tmp;

    private Path out() {
        return tmp.resolve("scores.json");
    }

    private void assertRefused(String expectedInMessage, String... args) {
        Cli cli = Cli.run(args);
        assertEquals(1, cli.exitCode(), "exit status; stderr was: " + cli.err());
        String err = cli.err().strip();
        assertTrue(err.startsWith("hfprune: error: "), err);
        assertEquals(1, err.lines().count(), "one line, no stack trace: " + err);
        assertTrue(err.contains(expectedInMessage), "message should mention '" + expectedInMessage + "': " + err);
        assertFalse(Files.exists(out()), "nothing may be written");
        try (var files = Files.list(tmp)) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().contains("scores")), "no temporary file left");
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private Path tokenWindows() throws IOException {
        Path data = tmp.resolve("windows.json");
        Files.writeString(data, "[[1,2,3,4],[5,6,7,8]]");
        return data;
    }

    @Test
    void truncatedGguf() throws IOException {
        byte[] gguf = Files.readAllBytes(Assets.stories260K());
        Path truncated = tmp.resolve("truncated.gguf");
        Files.write(truncated, Arrays.copyOf(gguf, gguf.length / 2));
        assertRefused("truncated", "score", "--model", truncated.toString(), "--data", tokenWindows().toString(),
                "--seq-len", "4", "--out", out().toString());
    }

    @Test
    void ggufCutInsideItsHeader() throws IOException {
        byte[] gguf = Files.readAllBytes(Assets.stories260K());
        Path truncated = tmp.resolve("header.gguf");
        Files.write(truncated, Arrays.copyOf(gguf, 1000));
        assertRefused("truncated", "generate", "--model", truncated.toString(), "--prompt", "Hi");
    }

    @Test
    void corruptSafetensorsHeader() throws IOException {
        Path model = tmp.resolve("model");
        TinyCheckpoints.writeTinyRandom(model, "LlamaForCausalLM", 1, "F32", Long.MAX_VALUE);
        try (var ch = Files.newByteChannel(model.resolve("model.safetensors"), StandardOpenOption.WRITE)) {
            ch.position(8);
            ch.write(java.nio.ByteBuffer.wrap("#garbage!".getBytes()));
        }
        assertRefused("model.safetensors", "score", "--model", model.toString(), "--data", tokenWindows().toString(),
                "--seq-len", "4", "--out", out().toString());
    }

    @Test
    void weightShapeContradictsConfig() throws IOException {
        Path model = tmp.resolve("model");
        TinyCheckpoints.writeTinyRandom(model, "LlamaForCausalLM", 1, "F32", Long.MAX_VALUE);
        Path config = model.resolve("config.json");
        String json = Files.readString(config);
        Files.writeString(config, json.replaceFirst("\"hidden_size\"\\s*:\\s*\\d+", "\"hidden_size\" : 40"));
        assertRefused("shape", "score", "--model", model.toString(), "--data", tokenWindows().toString(),
                "--seq-len", "4", "--out", out().toString());
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
        Path model = tmp.resolve("model");
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
    void emptyDataFile() throws IOException {
        Path empty = Files.writeString(tmp.resolve("empty.txt"), "\n<|endoftext|>\n  \n");
        assertRefused("contains no text", "score", "--model", Assets.stories260K().toString(),
                "--data", empty.toString(), "--seq-len", "16", "--out", out().toString());
    }

    @Test
    void seqLenLongerThanTheData() throws IOException {
        Path small = Files.writeString(tmp.resolve("small.txt"), "Once upon a time, there was a cat.");
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
    void missingModel() {
        assertRefused("does not exist", "generate", "--model", tmp.resolve("nope.gguf").toString(), "--prompt", "Hi");
    }
}
