package ai.hfprune.engine.tokenizer;

import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes a GGUF SentencePiece vocabulary ({@link SentencePieceTokenizer}) as a Hugging Face {@code tokenizer.json}
 * that the tokenizers library encodes to the same ids, built the way transformers' LlamaConverter does:
 * a BPE model over the same vocabulary, merges derived from the piece scores (SentencePieceExtractor), the
 * {@code ▁} normalizer, byte fallback when the vocabulary has all {@code <0xNN>} pieces, and the Llama decoder.
 *
 * <p>Two deliberate differences from LlamaConverter keep the ids identical to {@link SentencePieceTokenizer}:
 * {@code fuse_unk} is false, because SentencePiece emits one unknown token per unknown character (this only matters
 * without byte fallback); and merges involve only normal and user-defined pieces, the only ones SentencePiece ever
 * forms from text. Known remaining difference: the tokenizers library matches the special tokens' text (e.g. a
 * literal {@code <s>}) in the input, SentencePiece does not.
 */
public final class SentencePieceConverter {
    private SentencePieceConverter() {
    }

    private static final JsonMapper JSON = new JsonMapper();
    private static final String SPACE = String.valueOf(SentencePieceTokenizer.SPACE_MARK);

    /** One merge rule: the pair, the merged piece's score and the pair's ids (the order within equal scores). */
    private record Merge(String left, String right, float score, int leftId, int rightId) {
    }

    public static ObjectNode tokenizerJson(SentencePieceTokenizer spm) {
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        addedTokens(root.putArray("added_tokens"), spm);
        normalizer(root.putObject("normalizer"), spm.addSpacePrefix());
        root.putNull("pre_tokenizer");
        postProcessor(root.putObject("post_processor"), spm);
        decoder(root.putObject("decoder"), spm.addSpacePrefix());
        model(root.putObject("model"), spm);
        return root;
    }

    /**
     * tokenizer_config.json for transformers' generic fast tokenizer, which runs tokenizer.json as is (the
     * post-processor adds BOS, as Llama's tokenizer does).
     */
    public static ObjectNode tokenizerConfig(SentencePieceTokenizer spm, int modelMaxLength) {
        ObjectNode o = JSON.createObjectNode();
        o.put("tokenizer_class", "PreTrainedTokenizerFast");
        o.put("bos_token", spm.pieces().get(spm.bosId()));
        o.put("eos_token", spm.pieces().get(spm.eosId()));
        o.put("unk_token", spm.pieces().get(spm.unkId()));
        o.put("model_max_length", modelMaxLength);
        o.put("clean_up_tokenization_spaces", false);
        return o;
    }

    /** The unknown, BOS and EOS pieces, special so that decoding with skip_special_tokens drops them. */
    private static void addedTokens(ArrayNode added, SentencePieceTokenizer spm) {
        Set<Integer> ids = new LinkedHashSet<>(List.of(spm.unkId(), spm.bosId(), spm.eosId()));
        ids.stream().sorted().forEach(id -> added.addObject()
                .put("id", id)
                .put("content", spm.pieces().get(id))
                .put("single_word", false)
                .put("lstrip", false)
                .put("rstrip", false)
                .put("normalized", false)
                .put("special", true));
    }

    /** SentencePiece's escaping: optional "▁" prefix, then every space becomes "▁". */
    private static void normalizer(ObjectNode n, boolean addSpacePrefix) {
        n.put("type", "Sequence");
        ArrayNode list = n.putArray("normalizers");
        if (addSpacePrefix) {
            list.addObject().put("type", "Prepend").put("prepend", SPACE);
        }
        ObjectNode replace = list.addObject().put("type", "Replace");
        replace.putObject("pattern").put("String", " ");
        replace.put("content", SPACE);
    }

    /** BOS before each sequence, as LlamaTokenizerFast sets up (hfprune itself encodes without it). */
    private static void postProcessor(ObjectNode p, SentencePieceTokenizer spm) {
        String bos = spm.pieces().get(spm.bosId());
        p.put("type", "TemplateProcessing");
        ArrayNode single = p.putArray("single");
        special(single, bos, 0);
        sequence(single, "A", 0);
        ArrayNode pair = p.putArray("pair");
        special(pair, bos, 0);
        sequence(pair, "A", 0);
        special(pair, bos, 1);
        sequence(pair, "B", 1);
        ObjectNode token = p.putObject("special_tokens").putObject(bos);
        token.put("id", bos);
        token.putArray("ids").add(spm.bosId());
        token.putArray("tokens").add(bos);
    }

    private static void special(ArrayNode template, String id, int typeId) {
        template.addObject().putObject("SpecialToken").put("id", id).put("type_id", typeId);
    }

    private static void sequence(ArrayNode template, String id, int typeId) {
        template.addObject().putObject("Sequence").put("id", id).put("type_id", typeId);
    }

    /** "▁" back to spaces, byte pieces back to bytes, and the prefix space removed. */
    private static void decoder(ObjectNode d, boolean addSpacePrefix) {
        d.put("type", "Sequence");
        ArrayNode list = d.putArray("decoders");
        ObjectNode replace = list.addObject().put("type", "Replace");
        replace.putObject("pattern").put("String", SPACE);
        replace.put("content", " ");
        list.addObject().put("type", "ByteFallback");
        list.addObject().put("type", "Fuse");
        if (addSpacePrefix) {
            list.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);
        }
    }

    private static void model(ObjectNode m, SentencePieceTokenizer spm) {
        m.put("type", "BPE");
        m.putNull("dropout");
        m.put("unk_token", spm.pieces().get(spm.unkId()));
        m.putNull("continuing_subword_prefix");
        m.putNull("end_of_word_suffix");
        m.put("fuse_unk", false);
        m.put("byte_fallback", spm.hasByteFallback());
        ObjectNode vocab = m.putObject("vocab");
        List<String> pieces = spm.pieces();
        for (int id = 0; id < pieces.size(); id++) {
            vocab.put(pieces.get(id), id); // a duplicate piece keeps its last id, as in SentencePieceTokenizer
        }
        // "left right" strings are read by every tokenizers version; pairs (tokenizers >= 0.20) only when a piece
        // holds a space, which the string form cannot represent.
        List<Merge> merges = merges(spm);
        boolean pairs = merges.stream().anyMatch(x -> x.left().contains(" ") || x.right().contains(" "));
        ArrayNode list = m.putArray("merges");
        for (Merge merge : merges) {
            if (pairs) {
                list.addArray().add(merge.left()).add(merge.right());
            } else {
                list.add(merge.left() + " " + merge.right());
            }
        }
    }

    /**
     * SentencePieceExtractor's merges: for every piece, each split into two pieces of the vocabulary (ordered by the
     * pair's ids), then all of them by the merged piece's score, highest first (a stable sort, so equal scores keep
     * vocabulary order). BPE's merge rank thus follows SentencePiece's merge priority.
     */
    static List<Merge> merges(SentencePieceTokenizer spm) {
        List<String> pieces = spm.pieces();
        int[] types = spm.types();
        float[] scores = spm.scores();
        Map<String, Integer> matchable = new HashMap<>();
        for (int id = 0; id < pieces.size(); id++) {
            if (types[id] == SentencePieceTokenizer.TYPE_NORMAL || types[id] == SentencePieceTokenizer.TYPE_USER_DEFINED) {
                matchable.put(pieces.get(id), id);
            }
        }
        List<Merge> merges = new ArrayList<>();
        for (int id = 0; id < pieces.size(); id++) {
            String piece = pieces.get(id);
            if (matchable.getOrDefault(piece, -1) != id) {
                continue; // not formed from text, or a duplicate whose last id wins
            }
            List<Merge> local = new ArrayList<>();
            for (int i = piece.offsetByCodePoints(0, 1); i < piece.length(); i = piece.offsetByCodePoints(i, 1)) {
                Integer l = matchable.get(piece.substring(0, i));
                Integer r = matchable.get(piece.substring(i));
                if (l != null && r != null) {
                    local.add(new Merge(piece.substring(0, i), piece.substring(i), scores[id], l, r));
                }
            }
            local.sort(Comparator.comparingInt(Merge::leftId).thenComparingInt(Merge::rightId));
            merges.addAll(local);
        }
        merges.sort(Comparator.comparingDouble(Merge::score).reversed()); // List.sort is stable
        return merges;
    }
}
