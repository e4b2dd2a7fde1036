package ai.hfprune.cli;

import ai.hfprune.cli.PruneCommandTest.Result;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static ai.hfprune.cli.PruneCommandTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code tokenize}: ids of a text and text of ids with a model's tokenizer, the LLaMA-2 vocabulary-only GGUF included. */
class TokenizeCommandTest {

    private static String llama;

    @BeforeAll
    static void offline() {
        System.setProperty("ai.djl.offline", "true");
        llama = Assets.resolve("tokenizers/llama-spm/ggml-vocab-llama-spm.gguf").toString();
    }

    @Test
    void idsOfTextAndTextOfIds(@TempDir Path dir) throws Exception {
        // llama.cpp's vectors for these inputs (ggml-vocab-llama-spm.gguf.inp/.out)
        assertEquals("15043 3186\n", ok("--model", llama, "--text", "Hello world"));
        assertEquals("1 15043 3186\n", ok("--model", llama, "--text", "Hello world", "--bos"));
        assertEquals("Hello world\n", ok("--model", llama, "--decode", "--text", "1, 15043, 3186"));
        Path file = dir.resolve("text.txt");
        Files.writeString(file, "\t\n", StandardCharsets.UTF_8);
        assertEquals("29871 12 13\n", ok("--model", llama, "--file", file.toString()));
        assertEquals("\n", ok("--model", llama, "--text", ""), "no ids for no text");
        // the default model, stories260K, round trip
        String ids = ok("--text", "Once upon a time", "--bos").strip();
        assertEquals("Once upon a time\n", ok("--decode", "--text", ids));
    }

    @Test
    void badInputGetsOneMessage(@TempDir Path dir) throws Exception {
        Path notUtf8 = dir.resolve("bad.txt");
        Files.write(notUtf8, new byte[] {'a', (byte) 0xC3, 0x28});
        assertError("give exactly one of --text and --file", "--model", llama, "--text", "x", "--file", notUtf8.toString());
        assertError("give exactly one of --text and --file", "--model", llama);
        assertError("is not valid UTF-8", "--model", llama, "--file", notUtf8.toString());
        assertError("is not a file", "--model", llama, "--file", dir.toString());
        assertError("'abc' is not a token id", "--model", llama, "--decode", "--text", "1 abc");
        assertError("token id 32000 is outside the vocabulary [0, 32000)", "--model", llama, "--decode", "--text", "32000");
        assertError("does not exist", "--model", dir.resolve("missing.gguf").toString(), "--text", "x");
    }

    private static String ok(String... args) {
        Result r = run(prepend(args));
        assertEquals(0, r.exitCode(), r.err());
        return r.out();
    }

    private static void assertError(String fragment, String... args) {
        Result r = run(prepend(args));
        assertEquals(1, r.exitCode(), r.out());
        assertTrue(r.err().contains(fragment), r.err());
    }

    private static String[] prepend(String... args) {
        String[] out = new String[args.length + 1];
        out[0] = "tokenize";
        System.arraycopy(args, 0, out, 1, args.length);
        return out;
    }
}
