package ai.hfprune.engine.tokenizer;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufFile;
import ai.hfprune.engine.io.GgufValue;
import ai.hfprune.engine.testing.Assets;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * tokenizer.json to GGUF tokenizer metadata. SentencePiece BPE: the real vocabularies, written as tokenizer.json by
 * {@link SentencePieceConverter} and converted back, tokenize as the original GGUF tokenizers do (scores derived from
 * merge ranks give SentencePiece the BPE merge order). Byte-level BPE: the llama.cpp pre-tokenizer names. That
 * llama.cpp's own tokenizer agrees is checked in the tests module.
 */
class GgufVocabularyConverterTest {

    private static final JsonMapper JSON = new JsonMapper();
    private static final List<String> TEXTS = List.of("Once upon a time, there was a little girl named Lily.",
            "  two spaces\tand\nnew lines", "Caf\u00e9 \u2603 \ud83d\ude00", "x", "");

    @Test
    void sentencePieceVocabulariesRoundTripWithTheirTokenization() throws Exception {
        for (Path model : List.of(Assets.stories260K(), Assets.require("models/stories3M/stories3M.gguf"))) {
            SentencePieceTokenizer original;
            try (GgufFile gguf = GgufFile.open(model)) {
                original = SentencePieceTokenizer.fromGguf(gguf);
            }
            JsonNode json = JSON.readTree(SentencePieceConverter.tokenizerJson(original).toString());
            Map<String, GgufValue> m = GgufVocabularyConverter.convert(json, JSON.createObjectNode(),
                    original.bosId(), original.eosId(), model.toString());
            assertEquals(GgufValue.string("llama"), m.get("tokenizer.ggml.model"));
            assertEquals(original.pieces(), m.get("tokenizer.ggml.tokens").list());
            int[] types = m.get("tokenizer.ggml.token_type").list().stream().mapToInt(v -> (Integer) v).toArray();
            assertArrayEquals(original.types(), types, "unknown, control, byte and normal pieces");
            assertEquals(GgufValue.bool(true), m.get("tokenizer.ggml.add_bos_token"), "the post-processor adds BOS");
            assertEquals(GgufValue.bool(true), m.get("tokenizer.ggml.add_space_prefix"));

            List<Object> scoreList = m.get("tokenizer.ggml.scores").list();
            float[] scores = new float[scoreList.size()];
            for (int i = 0; i < scores.length; i++) {
                scores[i] = (Float) scoreList.get(i);
            }
            SentencePieceTokenizer converted = new SentencePieceTokenizer(original.pieces(), scores, types,
                    original.bosId(), original.eosId(), original.unkId(), true);
            for (String text : TEXTS) {
                assertArrayEquals(original.encode(text), converted.encode(text), model.getFileName() + ": " + text);
            }
        }
    }

    @Test
    void byteLevelBpeGetsLlamaCppsPreTokenizerName() throws Exception {
        String llama3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                + "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
        Map<String, GgufValue> m = convert(byteLevel(llama3), "{\"add_bos_token\": true}", 3, 4);
        assertEquals(GgufValue.string("gpt2"), m.get("tokenizer.ggml.model"));
        assertEquals(GgufValue.string("llama-bpe"), m.get("tokenizer.ggml.pre"));
        assertEquals(List.of("a", "b", "ab", "<|begin|>", "<|end|>"), m.get("tokenizer.ggml.tokens").list());
        assertEquals(List.of(1, 1, 1, 3, 3), m.get("tokenizer.ggml.token_type").list(), "added special tokens: control");
        assertEquals(List.of("a b"), m.get("tokenizer.ggml.merges").list(), "pairs written as \"left right\"");
        assertEquals(GgufValue.u32(3), m.get("tokenizer.ggml.bos_token_id"));
        assertEquals(GgufValue.bool(true), m.get("tokenizer.ggml.add_bos_token"));

        String qwen2 = llama3.replace("\\p{N}{1,3}", "\\p{N}");
        Map<String, GgufValue> q = convert(byteLevel(qwen2), "{}", -1, 4);
        assertEquals(GgufValue.string("qwen2"), q.get("tokenizer.ggml.pre"));
        assertEquals(null, q.get("tokenizer.ggml.bos_token_id"), "Qwen has no BOS");
        assertEquals(GgufValue.bool(false), q.get("tokenizer.ggml.add_bos_token"));

        ObjectNode gpt2 = byteLevel(null);
        gpt2.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false).put("use_regex", true);
        assertEquals(GgufValue.string("gpt-2"), convert(gpt2, "{}", -1, 4).get("tokenizer.ggml.pre"));
    }

    @Test
    void refusesWhatItCannotConvert() throws Exception {
        HfpruneException e = assertThrows(HfpruneException.class, () -> convert(byteLevel("\\s+|\\w+"), "{}", -1, -1));
        assertTrue(e.getMessage().contains("none of llama.cpp's pre-tokenizers") && e.getMessage().contains("--format hf"),
                e.getMessage());
        ObjectNode wordLevel = byteLevel(null);
        ((ObjectNode) wordLevel.get("model")).put("type", "WordLevel");
        e = assertThrows(HfpruneException.class, () -> convert(wordLevel, "{}", -1, -1));
        assertTrue(e.getMessage().contains("its model is WordLevel, not BPE"), e.getMessage());
        ObjectNode plain = byteLevel(null);
        plain.putNull("pre_tokenizer");
        e = assertThrows(HfpruneException.class, () -> convert(plain, "{}", -1, -1));
        assertTrue(e.getMessage().contains("neither SentencePiece BPE"), e.getMessage());
        ObjectNode gap = byteLevel("x");
        ((ObjectNode) gap.get("added_tokens").get(1)).put("id", 9);
        e = assertThrows(HfpruneException.class, () -> convert(gap, "{}", -1, -1));
        assertTrue(e.getMessage().contains("not 0..9 without gaps"), e.getMessage());
    }

    private static Map<String, GgufValue> convert(JsonNode tokenizer, String config, int bos, int eos) throws Exception {
        return GgufVocabularyConverter.convert(tokenizer, JSON.readTree(config), bos, eos, "tokenizer.json");
    }

    /** A minimal byte-level BPE tokenizer.json; {@code regex} null: no Split pre-tokenizer. */
    private static ObjectNode byteLevel(String regex) throws Exception {
        ObjectNode t = (ObjectNode) JSON.readTree("""
                {"added_tokens": [{"id": 3, "content": "<|begin|>", "special": true},
                                  {"id": 4, "content": "<|end|>", "special": true}],
                 "normalizer": null,
                 "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                     {"type": "Split", "pattern": {"Regex": "REGEX"}, "behavior": "Isolated", "invert": false},
                     {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
                 "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}}
                """.replace("REGEX", regex == null ? "" : regex.replace("\\", "\\\\")));
        if (regex == null) {
            t.putObject("pre_tokenizer").put("type", "ByteLevel").put("use_regex", false);
        }
        return t;
    }
}
