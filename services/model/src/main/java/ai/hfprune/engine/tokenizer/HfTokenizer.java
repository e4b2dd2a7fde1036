package ai.hfprune.engine.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.hfprune.engine.HfpruneException;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json} run by the tokenizers library bundled with DJL. Encoding adds no
 * special tokens and neither truncates nor pads.
 *
 * <p>Decoding skips special tokens and follows the {@link Tokenizer} contract. SentencePiece-style
 * tokenizer.json files (LLaMA: pieces start with {@code ▁}) strip the first leading space of every decode,
 * but the contract keeps it unless a BOS precedes: for text not after a BOS this class decodes an anchor
 * token in front (the encoding of "a") and removes the anchor's text, which keeps the space, as
 * incremental detokenizers do. Other tokenizers (byte-level BPE, WordLevel...) add no prefix space, and
 * their own decoding is used as is.
 */
public final class HfTokenizer implements Tokenizer, AutoCloseable {

    private static final String SPACE_MARK = "\u2581";

    private final HuggingFaceTokenizer hf;
    private final int bosId;
    private final int eosId;
    private final int vocabSize;
    /** The anchor ids and their decoded text, or null when the decoder strips no prefix space. */
    private final long[] anchorIds;
    private final String anchorText;

    private HfTokenizer(HuggingFaceTokenizer hf, int bosId, int eosId, int vocabSize) {
        this.hf = hf;
        this.bosId = bosId;
        this.eosId = eosId;
        this.vocabSize = vocabSize;
        Encoding probe = hf.encode("a", false, false);
        String[] tokens = probe.getTokens();
        String probeText = hf.decode(probe.getIds(), true);
        if (tokens.length > 0 && tokens[0].startsWith(SPACE_MARK) && !probeText.isEmpty() && !probeText.startsWith(" ")) {
            anchorIds = probe.getIds();
            anchorText = probeText;
        } else {
            anchorIds = null;
            anchorText = null;
        }
    }

    /**
     * Loads {@code dir/tokenizer.json}. BOS/EOS ids come from the model's configuration; pass -1 for a
     * model without one (Qwen has no BOS).
     */
    public static HfTokenizer fromDirectory(Path dir, int bosId, int eosId) {
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw new HfpruneException(dir + " has no tokenizer.json");
        }
        int vocabSize;
        try {
            vocabSize = vocabSize(new ObjectMapper().readTree(file.toFile()), file);
        } catch (JacksonException e) {
            throw new HfpruneException(file + " is not valid JSON" + jsonLocation(e) + ": " + jsonProblem(e));
        } catch (IOException e) {
            throw new HfpruneException("cannot read " + file + ": " + e.getMessage(), e);
        }
        for (int id : new int[] {bosId, eosId}) {
            if (id < -1 || id >= vocabSize) {
                throw new HfpruneException(file + ": special token id " + id + " is outside the vocabulary (size " + vocabSize + ")");
            }
        }
        // explicit options: DJL otherwise truncates to 512 tokens and adds special tokens
        Map<String, String> options = Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false");
        HuggingFaceTokenizer hf;
        try {
            hf = HuggingFaceTokenizer.newInstance(file, options);
        } catch (IOException | RuntimeException e) {
            throw new HfpruneException("cannot load the Hugging Face tokenizer " + file + ": " + firstLine(e.getMessage()), e);
        }
        try {
            return new HfTokenizer(hf, bosId, eosId, vocabSize);
        } catch (RuntimeException e) {
            hf.close();
            throw new HfpruneException("the Hugging Face tokenizer " + file + " does not work: " + firstLine(e.getMessage()), e);
        }
    }

    /** One past the largest id of the model vocabulary and the added tokens. */
    private static int vocabSize(JsonNode root, Path file) {
        JsonNode vocab = root.path("model").path("vocab");
        int size = 0;
        if (vocab.isObject()) { // BPE, WordLevel, WordPiece: {"piece": id}
            for (Iterator<JsonNode> it = vocab.elements(); it.hasNext(); ) {
                size = Math.max(size, it.next().asInt() + 1);
            }
        } else if (vocab.isArray()) { // Unigram: [["piece", score], ...]
            size = vocab.size();
        } else {
            throw new HfpruneException(file + " has no model.vocab: not a Hugging Face tokenizer.json");
        }
        for (JsonNode added : root.path("added_tokens")) {
            size = Math.max(size, added.path("id").asInt() + 1);
        }
        return size;
    }

    private static String jsonLocation(JacksonException e) {
        return e.getLocation() == null ? "" : " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")";
    }

    /** Jackson's message without its "(start marker at [Source: ...])" tail. */
    private static String jsonProblem(JacksonException e) {
        String m = firstLine(e.getOriginalMessage());
        int source = m.indexOf("[Source:");
        if (source >= 0) {
            int paren = m.lastIndexOf('(', source);
            m = m.substring(0, paren >= 0 ? paren : source).strip();
        }
        return m;
    }

    private static String firstLine(String message) {
        if (message == null || message.isBlank()) {
            return "unknown error";
        }
        String line = message.strip();
        int nl = line.indexOf('\n');
        return nl < 0 ? line : line.substring(0, nl).strip();
    }

    @Override
    public int[] encode(String text) {
        long[] ids = hf.encode(text, false, false).getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    @Override
    public String decode(int[] ids) {
        StringBuilder out = new StringBuilder();
        int segmentStart = 0;
        boolean afterBos = false;
        for (int i = 0; i <= ids.length; i++) {
            if (i < ids.length) {
                if (ids[i] < 0 || ids[i] >= vocabSize) {
                    throw new HfpruneException("token id " + ids[i] + " is outside the vocabulary (size " + vocabSize + ")");
                }
                if (ids[i] != bosId) {
                    continue;
                }
            }
            out.append(decodeSegment(Arrays.copyOfRange(ids, segmentStart, i), afterBos));
            segmentStart = i + 1;
            afterBos = true;
        }
        return out.toString();
    }

    /** Decodes ids containing no BOS; EOS is dropped even if tokenizer.json does not mark it special. */
    private String decodeSegment(int[] ids, boolean afterBos) {
        long[] seg = Arrays.stream(ids).filter(id -> id != eosId).asLongStream().toArray();
        if (seg.length == 0) {
            return "";
        }
        if (afterBos || anchorIds == null) {
            return hf.decode(seg, true);
        }
        long[] anchored = new long[anchorIds.length + seg.length];
        System.arraycopy(anchorIds, 0, anchored, 0, anchorIds.length);
        System.arraycopy(seg, 0, anchored, anchorIds.length, seg.length);
        String text = hf.decode(anchored, true);
        return text.startsWith(anchorText) ? text.substring(anchorText.length()) : hf.decode(seg, true);
    }

    @Override
    public int bosId() {
        return bosId;
    }

    @Override
    public int eosId() {
        return eosId;
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public void close() {
        hf.close();
    }
}
