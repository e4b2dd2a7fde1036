package ai.hfprune.engine.tokenizer;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufValue;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json} as GGUF {@code tokenizer.*} metadata, for the two families llama.cpp runs
 * LLaMA-type models with:
 * <ul>
 * <li>SentencePiece BPE (Llama 2, Mistral; the {@code ▁} space marker): {@code tokenizer.ggml.model = llama}.
 * llama.cpp's SentencePiece tokenizer merges the adjacent pair whose joined piece scores highest, where BPE applies
 * the lowest-ranked merge, so each piece scores minus the rank of the first merge forming it (transformers'
 * LlamaConverter orders merges by piece score, so this restores an order it came from).</li>
 * <li>Byte-level BPE (Llama 3, Qwen2/3): {@code tokenizer.ggml.model = gpt2} with the merges and the pre-tokenizer
 * llama.cpp knows by name ({@code tokenizer.ggml.pre}), recognized from the split regex.</li>
 * </ul>
 * Anything else is refused with a message.
 */
public final class GgufVocabularyConverter {
    private GgufVocabularyConverter() {
    }

    private static final JsonMapper JSON = new JsonMapper();

    // llama.cpp's token types (llama_token_type)
    static final int NORMAL = 1;
    static final int UNKNOWN = 2;
    static final int CONTROL = 3;
    static final int USER_DEFINED = 4;
    static final int BYTE = 6;

    /**
     * @param bosId the model's BOS id, or -1
     * @param eosId the model's EOS id, or -1
     */
    public static Map<String, GgufValue> fromDirectory(Path dir, int bosId, int eosId) {
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw new HfpruneException("--format gguf: " + dir + " has no tokenizer.json to convert");
        }
        try {
            JsonNode config = Files.isRegularFile(dir.resolve("tokenizer_config.json"))
                    ? JSON.readTree(dir.resolve("tokenizer_config.json").toFile()) : JSON.createObjectNode();
            return convert(JSON.readTree(file.toFile()), config, bosId, eosId, file.toString());
        } catch (IOException e) {
            throw new HfpruneException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    static Map<String, GgufValue> convert(JsonNode tokenizer, JsonNode config, int bosId, int eosId, String where) {
        JsonNode model = tokenizer.path("model");
        if (!"BPE".equals(model.path("type").asText())) {
            throw refused(where, "its model is " + model.path("type").asText("missing") + ", not BPE");
        }
        Vocabulary v = Vocabulary.of(tokenizer, where);
        Map<String, GgufValue> m = new LinkedHashMap<>();
        if (ByteLevelPreTokenizers.usesByteLevel(tokenizer)) {
            m.put("tokenizer.ggml.model", GgufValue.string("gpt2"));
            m.put("tokenizer.ggml.pre", GgufValue.string(ByteLevelPreTokenizers.llamaCppName(tokenizer, where)));
            m.put("tokenizer.ggml.tokens", strings(v.tokens));
            m.put("tokenizer.ggml.token_type", GgufValue.i32s(v.types(-1, false)));
            m.put("tokenizer.ggml.merges", strings(merges(model)));
        } else if (usesSpaceMarker(tokenizer)) {
            int unk = v.id(model.path("unk_token").asText(null));
            boolean byteFallback = model.path("byte_fallback").asBoolean(false);
            m.put("tokenizer.ggml.model", GgufValue.string("llama"));
            m.put("tokenizer.ggml.tokens", strings(v.tokens));
            m.put("tokenizer.ggml.scores", scores(v, merges(model)));
            m.put("tokenizer.ggml.token_type", GgufValue.i32s(v.types(unk, byteFallback)));
            if (unk >= 0) {
                m.put("tokenizer.ggml.unknown_token_id", GgufValue.u32(unk));
            }
            m.put("tokenizer.ggml.add_space_prefix", GgufValue.bool(prependsSpace(tokenizer)));
        } else {
            throw refused(where, "it is neither SentencePiece BPE (▁ space marker) nor byte-level BPE");
        }
        if (bosId >= 0) {
            m.put("tokenizer.ggml.bos_token_id", GgufValue.u32(bosId));
        }
        if (eosId >= 0) {
            m.put("tokenizer.ggml.eos_token_id", GgufValue.u32(eosId));
        }
        m.put("tokenizer.ggml.add_bos_token", GgufValue.bool(bosId >= 0 && addsBos(tokenizer, config, v, bosId)));
        m.put("tokenizer.ggml.add_eos_token", GgufValue.bool(config.path("add_eos_token").asBoolean(false)));
        return m;
    }

    static HfpruneException refused(String where, String why) {
        return new HfpruneException("--format gguf: cannot convert " + where + " for llama.cpp: " + why
                + "; use --format hf");
    }

    /** Every token by id, with its kind: the model's vocabulary and the added tokens. */
    private record Vocabulary(List<String> tokens, Map<String, Integer> ids, boolean[] special, boolean[] added) {

        static Vocabulary of(JsonNode tokenizer, String where) {
            Map<Integer, String> byId = new HashMap<>();
            tokenizer.path("model").path("vocab").fields().forEachRemaining(e -> byId.put(e.getValue().asInt(), e.getKey()));
            Map<Integer, Boolean> addedSpecial = new HashMap<>();
            for (JsonNode a : tokenizer.path("added_tokens")) {
                byId.put(a.path("id").asInt(), a.path("content").asText());
                addedSpecial.put(a.path("id").asInt(), a.path("special").asBoolean(false));
            }
            int n = byId.keySet().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
            if (n == 0 || byId.size() != n) {
                throw refused(where, "its token ids are not 0.." + (n - 1) + " without gaps (" + byId.size() + " tokens)");
            }
            List<String> tokens = new ArrayList<>(n);
            Map<String, Integer> ids = new HashMap<>();
            boolean[] special = new boolean[n];
            boolean[] added = new boolean[n];
            for (int id = 0; id < n; id++) {
                tokens.add(byId.get(id));
                ids.putIfAbsent(byId.get(id), id);
                added[id] = addedSpecial.containsKey(id);
                special[id] = addedSpecial.getOrDefault(id, false);
            }
            return new Vocabulary(tokens, ids, special, added);
        }

        int id(String token) {
            return token == null ? -1 : ids.getOrDefault(token, -1);
        }

        /** llama.cpp's types: special added tokens are CONTROL, other added ones USER_DEFINED. */
        int[] types(int unk, boolean byteFallback) {
            int[] t = new int[tokens.size()];
            for (int id = 0; id < t.length; id++) {
                t[id] = id == unk ? UNKNOWN
                        : special[id] ? CONTROL
                        : added[id] ? USER_DEFINED
                        : byteFallback && tokens.get(id).matches("<0x[0-9A-Fa-f]{2}>") ? BYTE
                        : NORMAL;
            }
            return t;
        }
    }

    /** Each token scores minus the rank of the first merge forming it; a token no merge forms scores 0. */
    private static GgufValue scores(Vocabulary v, List<String> merges) {
        float[] scores = new float[v.tokens().size()];
        boolean[] formed = new boolean[scores.length];
        for (int rank = 0; rank < merges.size(); rank++) {
            String merge = merges.get(rank);
            int space = merge.indexOf(' ');
            int id = v.id(merge.substring(0, space) + merge.substring(space + 1));
            if (id >= 0 && !formed[id]) {
                formed[id] = true;
                scores[id] = -(rank + 1);
            }
        }
        List<Object> list = new ArrayList<>(scores.length);
        for (float s : scores) {
            list.add(s);
        }
        return new GgufValue(GgufValue.ARRAY, GgufValue.FLOAT32, list);
    }

    /** "left right", from either form tokenizers writes (a string, or a pair in tokenizers ≥ 0.20). */
    private static List<String> merges(JsonNode model) {
        List<String> out = new ArrayList<>();
        for (JsonNode merge : model.path("merges")) {
            if (merge.isArray()) {
                if (merge.get(0).asText().contains(" ") || merge.get(1).asText().contains(" ")) {
                    throw new HfpruneException("--format gguf: a merge of pieces with spaces (" + merge
                            + ") cannot be written as GGUF's \"left right\" string; use --format hf");
                }
                out.add(merge.get(0).asText() + " " + merge.get(1).asText());
            } else {
                out.add(merge.asText());
            }
        }
        return out;
    }

    private static GgufValue strings(List<String> values) {
        return new GgufValue(GgufValue.ARRAY, GgufValue.STRING, new ArrayList<>(values));
    }

    /** SentencePiece's escaping: a Replace of " " by "▁" in the normalizer, or a Metaspace pre-tokenizer. */
    private static boolean usesSpaceMarker(JsonNode tokenizer) {
        return components(tokenizer.path("normalizer")).stream().anyMatch(n -> "Replace".equals(n.path("type").asText())
                && " ".equals(n.path("pattern").path("String").asText()) && "▁".equals(n.path("content").asText()))
                || components(tokenizer.path("pre_tokenizer")).stream().anyMatch(p -> "Metaspace".equals(p.path("type").asText()));
    }

    /** The "▁" before the text: a Prepend normalizer, or Metaspace's prepend scheme (or old add_prefix_space). */
    private static boolean prependsSpace(JsonNode tokenizer) {
        return components(tokenizer.path("normalizer")).stream().anyMatch(n -> "Prepend".equals(n.path("type").asText())
                && "▁".equals(n.path("prepend").asText()))
                || components(tokenizer.path("pre_tokenizer")).stream().anyMatch(p -> "Metaspace".equals(p.path("type").asText())
                && (!"never".equals(p.path("prepend_scheme").asText("always")) && p.path("add_prefix_space").asBoolean(true)));
    }

    /** BOS first: tokenizer_config's add_bos_token, else the post-processor's template starting with it. */
    private static boolean addsBos(JsonNode tokenizer, JsonNode config, Vocabulary v, int bosId) {
        if (config.has("add_bos_token")) {
            return config.get("add_bos_token").asBoolean();
        }
        for (JsonNode p : components(tokenizer.path("post_processor"))) {
            JsonNode first = p.path("single").path(0).path("SpecialToken").path("id");
            if ("TemplateProcessing".equals(p.path("type").asText()) && v.id(first.asText(null)) == bosId) {
                return true;
            }
        }
        return false;
    }

    /** A normalizer, pre-tokenizer or processor, or the members of a Sequence of them. */
    static List<JsonNode> components(JsonNode node) {
        List<JsonNode> out = new ArrayList<>();
        if (node == null || node.isNull() || node.isMissingNode()) {
            return out;
        }
        for (String key : List.of("normalizers", "pretokenizers", "processors")) {
            if (node.has(key)) {
                node.get(key).forEach(out::add);
                return out;
            }
        }
        return Arrays.asList(node);
    }
}
