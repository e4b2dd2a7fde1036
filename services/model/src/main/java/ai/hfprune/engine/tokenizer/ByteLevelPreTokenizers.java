package ai.hfprune.engine.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;
import java.util.Map;

/**
 * Which of llama.cpp's byte-level pre-tokenizers ({@code tokenizer.ggml.pre}) a tokenizer.json's pre-tokenizer is.
 * llama.cpp's converter tells them apart by hashing the ids of a test text; here the split regex itself is compared,
 * which is what those names stand for. Unknown regexes are refused: a wrong name would split text differently.
 */
final class ByteLevelPreTokenizers {
    private ByteLevelPreTokenizers() {
    }

    /** Split regexes as tokenizer.json holds them, with llama.cpp's names (its llama-vocab.cpp). */
    private static final Map<String, String> KNOWN = Map.of(
            // Llama 3, 3.1, 3.2
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            "llama-bpe",
            // Qwen2, Qwen2.5, Qwen3: single digits
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            "qwen2");

    static boolean usesByteLevel(JsonNode tokenizer) {
        return GgufVocabularyConverter.components(tokenizer.path("pre_tokenizer")).stream()
                .anyMatch(p -> "ByteLevel".equals(p.path("type").asText()));
    }

    static String llamaCppName(JsonNode tokenizer, String where) {
        List<JsonNode> parts = GgufVocabularyConverter.components(tokenizer.path("pre_tokenizer"));
        for (JsonNode p : parts) {
            if ("Split".equals(p.path("type").asText())) {
                String regex = p.path("pattern").path("Regex").asText(null);
                String name = regex == null ? null : KNOWN.get(regex);
                if (name == null) {
                    throw GgufVocabularyConverter.refused(where, "its pre-tokenizer splits by " + p.path("pattern")
                            + ", which is none of llama.cpp's pre-tokenizers hfprune knows (llama-bpe, qwen2, gpt-2)");
                }
                return name;
            }
        }
        // GPT-2's own regex is the ByteLevel pre-tokenizer's built-in one
        boolean builtIn = parts.stream().anyMatch(p -> "ByteLevel".equals(p.path("type").asText())
                && p.path("use_regex").asBoolean(true));
        if (!builtIn) {
            throw GgufVocabularyConverter.refused(where, "its byte-level pre-tokenizer splits by no regex");
        }
        return "gpt-2";
    }
}
