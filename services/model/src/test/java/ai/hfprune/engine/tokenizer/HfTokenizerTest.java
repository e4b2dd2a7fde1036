package ai.hfprune.engine.tokenizer;

import ai.hfprune.engine.HfpruneException;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HfTokenizerTest {

    @BeforeAll
    static void offline() {
        System.setProperty("ai.djl.offline", "true"); // surefire sets it too; never reach for the network
    }

    private static final String SPECIALS = """
            [{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
             {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
             {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}]""";

    /** WordLevel model, whitespace pre-tokenizer, no decoder (tokens are joined by spaces). */
    private static final String WORD_LEVEL = """
            {"version": "1.0", "truncation": null, "padding": null,
             "added_tokens": %s,
             "normalizer": null,
             "pre_tokenizer": {"type": "Whitespace"},
             "post_processor": null,
             "decoder": null,
             "model": {"type": "WordLevel", "unk_token": "<unk>",
                       "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "hello": 3, "world": 4, "!": 5}}}
            """.formatted(SPECIALS);

    /** The LLaMA layout: BPE with byte fallback, "▁" prefix normalizer, decoder that strips the first space. */
    private static String llamaStyle() {
        StringBuilder vocab = new StringBuilder("\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
        for (int b = 0; b < 256; b++) {
            vocab.append(String.format(", \"<0x%02X>\": %d", b, 3 + b));
        }
        // ids 259.. : ▁ a b ▁a ab ▁ab
        vocab.append(", \"▁\": 259, \"a\": 260, \"b\": 261, \"▁a\": 262, \"ab\": 263, \"▁ab\": 264");
        return """
                {"version": "1.0", "truncation": null, "padding": null,
                 "added_tokens": %s,
                 "normalizer": {"type": "Sequence", "normalizers": [
                     {"type": "Prepend", "prepend": "▁"},
                     {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
                 "pre_tokenizer": null,
                 "post_processor": null,
                 "decoder": {"type": "Sequence", "decoders": [
                     {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                     {"type": "ByteFallback"},
                     {"type": "Fuse"},
                     {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
                 "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>",
                           "continuing_subword_prefix": null, "end_of_word_suffix": null,
                           "fuse_unk": true, "byte_fallback": true,
                           "vocab": {%s},
                           "merges": ["▁ a", "a b", "▁a b"]}}
                """.formatted(SPECIALS, vocab);
    }

    private static Path write(Path dir, String json) throws Exception {
        Files.writeString(dir.resolve("tokenizer.json"), json);
        return dir;
    }

    @Test
    void wordLevel(@TempDir Path dir) throws Exception {
        try (HfTokenizer tok = HfTokenizer.fromDirectory(write(dir, WORD_LEVEL), 1, 2)) {
            assertEquals(6, tok.vocabSize());
            assertEquals(1, tok.bosId());
            assertEquals(2, tok.eosId());
            assertArrayEquals(new int[] {3, 4, 5}, tok.encode("hello world!"), "no special tokens are added");
            assertArrayEquals(new int[] {3, 0}, tok.encode("hello there"));
            assertEquals("hello world !", tok.decode(new int[] {3, 4, 5}));
            assertEquals("hello world", tok.decode(new int[] {1, 3, 4, 2}), "BOS/EOS print nothing");
            assertEquals("hellohello", tok.decode(new int[] {1, 3, 2, 1, 3, 2}));
            assertEquals("", tok.decode(new int[0]));
            assertThrows(HfpruneException.class, () -> tok.decode(new int[] {6}));
        }
    }

    @Test
    void llamaStyleSpaceAndByteFallback(@TempDir Path dir) throws Exception {
        try (HfTokenizer tok = HfTokenizer.fromDirectory(write(dir, llamaStyle()), 1, 2)) {
            assertEquals(265, tok.vocabSize());
            // "ab a": ▁ab ▁a; "☃" (E2 98 83) is no piece → byte tokens 3 + byte
            assertArrayEquals(new int[] {264, 262}, tok.encode("ab a"));
            assertArrayEquals(new int[] {259, 3 + 0xE2, 3 + 0x98, 3 + 0x83}, tok.encode("☃"));
            // the contract: the prefix space goes only right after a BOS
            assertEquals("ab a", tok.decode(new int[] {1, 264, 262}));
            assertEquals(" ab a", tok.decode(new int[] {264, 262}));
            assertEquals(" ☃", tok.decode(new int[] {259, 3 + 0xE2, 3 + 0x98, 3 + 0x83}));
            assertEquals("ab a☃", tok.decode(new int[] {1, 264, 262, 2, 1, 259, 3 + 0xE2, 3 + 0x98, 3 + 0x83, 2}));
            String text = "a b ☃ ab";
            assertEquals(text, tok.decode(concat(1, tok.encode(text))));
        }
    }

    @Test
    void errors(@TempDir Path dir) throws Exception {
        HfpruneException missing = assertThrows(HfpruneException.class, () -> HfTokenizer.fromDirectory(dir, 1, 2));
        assertTrue(missing.getMessage().contains("tokenizer.json"), missing.getMessage());

        write(dir, "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0");
        HfpruneException corrupt = assertThrows(HfpruneException.class, () -> HfTokenizer.fromDirectory(dir, 1, 2));
        assertTrue(corrupt.getMessage().contains("not valid JSON") && !corrupt.getMessage().contains("\n"), corrupt.getMessage());

        write(dir, "{\"model\": {\"type\": \"NoSuchModel\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2}}}");
        HfpruneException invalid = assertThrows(HfpruneException.class, () -> HfTokenizer.fromDirectory(dir, 1, 2));
        assertTrue(invalid.getMessage().startsWith("cannot load") && !invalid.getMessage().contains("\n"), invalid.getMessage());

        write(dir, WORD_LEVEL);
        assertThrows(HfpruneException.class, () -> HfTokenizer.fromDirectory(dir, 99, 2), "BOS outside the vocabulary");
    }

    private static int[] concat(int first, int[] rest) {
        int[] out = new int[rest.length + 1];
        out[0] = first;
        System.arraycopy(rest, 0, out, 1, rest.length);
        return out;
    }
}
