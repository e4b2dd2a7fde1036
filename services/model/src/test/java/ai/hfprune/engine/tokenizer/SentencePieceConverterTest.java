package ai.hfprune.engine.tokenizer;

import ai.hfprune.engine.io.GgufFile;
import ai.hfprune.engine.testing.Assets;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The tokenizer.json converted from a GGUF vocabulary encodes real text to the GGUF tokenizer's ids. */
class SentencePieceConverterTest {

    @BeforeAll
    static void offline() {
        System.setProperty("ai.djl.offline", "true");
    }

    /** Characters neither vocabulary has, alone and in runs: byte fallback for stories260K, <unk> for babyllama. */
    private static final List<String> UNUSUAL = List.of(
            "naïve café ☃ 日本 😀",
            "Ünïcödé — “quotes” and emoji 🎉🎉 in a row",
            "tabs\tand\nnewlines\n\nin  double  spaces ",
            " leading space", "trailing space ", "  ", "\u00a0non-breaking\u00a0space",
            "0123456789 !@#$%^&*()_+-=[]{};':\",./<>?`~|\\",
            "x", "");

    @Test
    void stories260KWithByteFallback(@TempDir Path dir) throws Exception {
        SentencePieceTokenizer spm = load(Assets.stories260K());
        assertTrue(spm.hasByteFallback());
        JsonNode json = convert(spm, dir);
        assertTrue(json.at("/model/byte_fallback").asBoolean());
        assertTrue(json.at("/model/merges").size() > 0);
        assertSameIds(spm, dir);
    }

    @Test
    void babyllamaCharactersWithoutByteFallback(@TempDir Path dir) throws Exception {
        SentencePieceTokenizer spm = load(Assets.babyllama());
        assertFalse(spm.hasByteFallback());
        JsonNode json = convert(spm, dir);
        assertFalse(json.at("/model/byte_fallback").asBoolean());
        try (HfTokenizer hf = HfTokenizer.fromDirectory(dir, spm.bosId(), spm.eosId())) {
            int[] ids = hf.encode("naïve café ☃ 日本 😀");
            // one <unk> (id 0) per unknown character, as SentencePieceTokenizer does: not fused
            assertArrayEquals(new int[] {3, 9, 5, 0, 28, 4, 3, 22, 5, 24, 78, 3, 0, 3, 0, 0, 3, 0}, ids);
        }
        assertSameIds(spm, dir);
    }

    @Test
    void llamaLayout(@TempDir Path dir) throws Exception {
        SentencePieceTokenizer spm = load(Assets.stories260K());
        JsonNode json = convert(spm, dir);
        assertEquals("BPE", json.at("/model/type").asText());
        assertEquals("<unk>", json.at("/model/unk_token").asText());
        assertTrue(json.at("/pre_tokenizer").isNull());
        assertEquals("Prepend", json.at("/normalizer/normalizers/0/type").asText());
        assertEquals("▁", json.at("/normalizer/normalizers/0/prepend").asText());
        assertEquals("Strip", json.at("/decoder/decoders/3/type").asText());
        assertEquals(List.of("<unk>", "<s>", "</s>"),
                json.get("added_tokens").findValuesAsText("content"));
        json.get("added_tokens").forEach(t -> assertTrue(t.get("special").asBoolean()));
        assertEquals(512, json.at("/model/vocab").size());
        // the highest-scoring piece's merges come first
        String merged = json.at("/model/merges/0").asText().replace(" ", "");
        float best = Float.NEGATIVE_INFINITY;
        for (int id = 0; id < spm.vocabSize(); id++) {
            if (spm.types()[id] == SentencePieceTokenizer.TYPE_NORMAL && spm.pieces().get(id).length() > 1) {
                best = Math.max(best, spm.scores()[id]);
            }
        }
        assertEquals(best, spm.scores()[spm.pieces().indexOf(merged)]);
    }

    /** Decoding with the converted decoder gives back the text, as the GGUF tokenizer does. */
    @Test
    void decodesLikeTheGgufTokenizer(@TempDir Path dir) throws Exception {
        SentencePieceTokenizer spm = load(Assets.stories260K());
        convert(spm, dir);
        try (HfTokenizer hf = HfTokenizer.fromDirectory(dir, spm.bosId(), spm.eosId())) {
            for (String text : texts().subList(0, 50)) {
                int[] ids = withBos(spm.bosId(), spm.encode(text));
                assertEquals(spm.decode(ids), hf.decode(ids), text);
            }
        }
    }

    private static void assertSameIds(SentencePieceTokenizer spm, Path dir) throws Exception {
        List<String> texts = texts();
        assertTrue(texts.size() >= 300, "test text: " + texts.size() + " pieces");
        try (HfTokenizer hf = HfTokenizer.fromDirectory(dir, spm.bosId(), spm.eosId())) {
            for (String text : texts) {
                int[] expected = spm.encode(text);
                int[] actual = hf.encode(text);
                if (!Arrays.equals(expected, actual)) {
                    assertEquals(Arrays.toString(expected), Arrays.toString(actual), "ids of \"" + text + "\"");
                }
            }
        }
    }

    /** A few hundred lines of TinyStories validation text, some multi-line stretches, and unusual characters. */
    private static List<String> texts() throws Exception {
        List<String> lines = Files.readAllLines(Assets.require("data/tinystories/valid-hf-head.txt"), StandardCharsets.UTF_8);
        List<String> texts = new ArrayList<>(lines.subList(0, 400));
        for (int start = 400; start < 600; start += 20) {
            texts.add(String.join("\n", lines.subList(start, start + 20)));
        }
        texts.addAll(UNUSUAL);
        return texts;
    }

    private static JsonNode convert(SentencePieceTokenizer spm, Path dir) throws Exception {
        ObjectMapper json = new ObjectMapper();
        json.writeValue(dir.resolve("tokenizer.json").toFile(), SentencePieceConverter.tokenizerJson(spm));
        return json.readTree(dir.resolve("tokenizer.json").toFile());
    }

    private static SentencePieceTokenizer load(Path gguf) {
        try (GgufFile file = GgufFile.open(gguf)) {
            return SentencePieceTokenizer.fromGguf(file);
        }
    }

    private static int[] withBos(int bos, int[] ids) {
        int[] out = new int[ids.length + 1];
        out[0] = bos;
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }
}
