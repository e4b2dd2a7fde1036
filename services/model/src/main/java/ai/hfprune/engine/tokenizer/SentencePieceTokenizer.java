package ai.hfprune.engine.tokenizer;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufFile;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * llama.cpp's "llama" tokenizer (SentencePiece BPE with scores, {@code llm_tokenizer_spm}) built from the
 * vocabulary embedded in a GGUF file.
 *
 * <p>Encoding: optional space prefix, spaces become {@code ▁}, each code point starts as a symbol, then the
 * adjacent pair whose concatenation is the highest-scoring piece is merged (ties: leftmost pair) until no
 * pair forms a piece. A final symbol that is not a piece (always a single character, since merges only
 * produce pieces) becomes its UTF-8 bytes as {@code <0xNN>} tokens when the vocabulary has all 256 of them,
 * else the unknown token. Only normal and user-defined pieces take part: control, unknown, byte and unused
 * pieces are never produced by matching text (like SentencePiece; llama.cpp matches any piece, which makes
 * no difference for real vocabularies because those pieces cannot be built from character pairs).
 *
 * <p>Decoding: BOS, EOS and other control tokens print nothing, and so does the unknown token (its text is
 * lost anyway; Hugging Face's skip-special-tokens decoding does the same). {@code ▁} becomes a space; runs of
 * byte tokens are collected and UTF-8 decoded together, malformed sequences becoming U+FFFD. The space
 * prefix is dropped only from the text right after a BOS, so a decoded continuation keeps its leading space.
 *
 * <p>Instances are immutable and thread-safe.
 */
public final class SentencePieceTokenizer implements Tokenizer {

    /** GGUF / llama.cpp token types ({@code llama_token_type}). */
    public static final int TYPE_NORMAL = 1;
    public static final int TYPE_UNKNOWN = 2;
    public static final int TYPE_CONTROL = 3;
    public static final int TYPE_USER_DEFINED = 4;
    public static final int TYPE_UNUSED = 5;
    public static final int TYPE_BYTE = 6;

    /** SentencePiece's whitespace marker U+2581 "▁". */
    public static final char SPACE_MARK = '\u2581';

    private final List<String> pieces;
    private final float[] scores;
    private final int[] types;
    private final int bosId;
    private final int eosId;
    private final int unkId;
    private final boolean addSpacePrefix;

    /** Piece text to id, for the pieces that text may match (normal and user-defined). */
    private final Map<String, Integer> textToId;
    /** Length in UTF-16 chars of the longest matchable piece: longer pairs need no lookup. */
    private final int maxPieceChars;
    /** Byte value to its {@code <0xNN>} token id; null without (complete) byte fallback. */
    private final int[] byteToId;
    /** Per id: the byte a byte token stands for, else -1. */
    private final int[] idToByte;
    /** Per id: the text a normal/user-defined piece decodes to ({@code ▁} as space), else null. */
    private final String[] decodedText;

    public SentencePieceTokenizer(List<String> pieces, float[] scores, int[] types,
                                  int bosId, int eosId, int unkId, boolean addSpacePrefix) {
        int n = pieces.size();
        if (n == 0 || scores.length != n || types.length != n) {
            throw new HfpruneException("inconsistent SentencePiece vocabulary: " + n + " pieces, "
                    + scores.length + " scores, " + types.length + " token types");
        }
        requireId("BOS", bosId, n);
        requireId("EOS", eosId, n);
        requireId("unknown", unkId, n);
        this.pieces = List.copyOf(pieces);
        this.scores = scores.clone();
        this.types = types.clone();
        this.bosId = bosId;
        this.eosId = eosId;
        this.unkId = unkId;
        this.addSpacePrefix = addSpacePrefix;

        textToId = new HashMap<>(n * 2);
        idToByte = new int[n];
        decodedText = new String[n];
        int[] bytes = new int[256];
        Arrays.fill(bytes, -1);
        int byteCount = 0;
        int maxChars = 0;
        for (int id = 0; id < n; id++) {
            String piece = this.pieces.get(id);
            idToByte[id] = -1;
            switch (this.types[id]) {
                case TYPE_NORMAL, TYPE_USER_DEFINED -> {
                    textToId.put(piece, id); // a duplicate piece maps to its last id, as in llama.cpp
                    maxChars = Math.max(maxChars, piece.length());
                    decodedText[id] = piece.replace(SPACE_MARK, ' ');
                }
                case TYPE_BYTE -> {
                    int b = parseBytePiece(piece);
                    if (b < 0) {
                        throw new HfpruneException("byte token " + id + " is '" + piece + "', not of the form <0xNN>");
                    }
                    idToByte[id] = b;
                    if (bytes[b] < 0) {
                        bytes[b] = id;
                        byteCount++;
                    }
                }
                default -> {
                    // control, unknown, unused: never matched, print nothing
                }
            }
        }
        maxPieceChars = maxChars;
        byteToId = byteCount == 256 ? bytes : null;
    }

    private static void requireId(String what, int id, int n) {
        if (id < 0 || id >= n) {
            throw new HfpruneException("the " + what + " token id " + id + " is outside the vocabulary (size " + n + ")");
        }
    }

    /** Reads the tokenizer of a GGUF file ({@code tokenizer.ggml.*} metadata, model "llama"). */
    public static SentencePieceTokenizer fromGguf(GgufFile gguf) {
        String where = gguf.path().toString();
        String model = gguf.string("tokenizer.ggml.model");
        if (model != null && !model.equals("llama")) {
            throw new HfpruneException(where + ": tokenizer model '" + model
                    + "' is not supported (hfprune reads only the 'llama' SentencePiece tokenizer)");
        }
        List<Object> tokenList = gguf.array("tokenizer.ggml.tokens");
        if (tokenList == null || tokenList.isEmpty()) {
            throw new HfpruneException(where + " has no embedded tokenizer (metadata tokenizer.ggml.tokens is missing)");
        }
        int n = tokenList.size();
        List<String> pieces = tokenList.stream().map(String::valueOf).toList();
        float[] scores = new float[n];
        List<Object> scoreList = gguf.array("tokenizer.ggml.scores");
        if (scoreList != null) {
            requireLength(where, "tokenizer.ggml.scores", scoreList, n);
            for (int i = 0; i < n; i++) {
                scores[i] = ((Number) scoreList.get(i)).floatValue();
            }
        }
        int bos = intOr(gguf, "tokenizer.ggml.bos_token_id", 1); // llama.cpp's SPM defaults
        int eos = intOr(gguf, "tokenizer.ggml.eos_token_id", 2);
        int unk = intOr(gguf, "tokenizer.ggml.unknown_token_id", 0);
        int[] types = new int[n];
        List<Object> typeList = gguf.array("tokenizer.ggml.token_type");
        if (typeList != null) {
            requireLength(where, "tokenizer.ggml.token_type", typeList, n);
            for (int i = 0; i < n; i++) {
                types[i] = ((Number) typeList.get(i)).intValue();
            }
        } else { // old files: infer the types llama.cpp would need
            for (int i = 0; i < n; i++) {
                types[i] = i == unk ? TYPE_UNKNOWN : i == bos || i == eos ? TYPE_CONTROL
                        : parseBytePiece(pieces.get(i)) >= 0 ? TYPE_BYTE : TYPE_NORMAL;
            }
        }
        Object prefix = gguf.metadata().get("tokenizer.ggml.add_space_prefix");
        boolean addSpacePrefix = !(prefix instanceof Boolean b) || b;
        try {
            return new SentencePieceTokenizer(pieces, scores, types, bos, eos, unk, addSpacePrefix);
        } catch (HfpruneException e) {
            throw new HfpruneException(where + ": " + e.getMessage());
        }
    }

    private static void requireLength(String where, String key, List<Object> list, int n) {
        if (list.size() != n) {
            throw new HfpruneException(where + ": " + key + " has " + list.size() + " entries but there are " + n + " tokens");
        }
    }

    private static int intOr(GgufFile gguf, String key, int fallback) {
        Number v = gguf.number(key);
        return v == null ? fallback : v.intValue();
    }

    /** The byte of a {@code <0xNN>} piece, or -1. */
    private static int parseBytePiece(String piece) {
        if (piece.length() != 6 || !piece.startsWith("<0x") || piece.charAt(5) != '>') {
            return -1;
        }
        int hi = Character.digit(piece.charAt(3), 16);
        int lo = Character.digit(piece.charAt(4), 16);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    // ---- encoding -------------------------------------------------------------------------------------

    @Override
    public int[] encode(String text) {
        if (text.isEmpty()) {
            return new int[0]; // llama.cpp adds no space prefix to empty text either
        }
        String escaped = (addSpacePrefix ? " " + text : text).replace(' ', SPACE_MARK);
        return new SpmSession(escaped).tokenize();
    }

    /** A candidate merge of two adjacent symbols ({@code llm_bigram_spm}); size is the merged length in chars. */
    private record Bigram(int left, int right, float score, int size) {
    }

    /** Highest score first; on ties the leftmost pair, as llama.cpp's comparator. */
    private static int compareBigrams(Bigram a, Bigram b) {
        int c = Float.compare(b.score, a.score);
        return c != 0 ? c : Integer.compare(a.left, b.left);
    }

    /**
     * One encode call ({@code llm_tokenizer_spm_session}): symbols are code points of {@code text} kept in a
     * doubly linked list of parallel arrays; merged-away symbols get length 0. A priority queue holds every
     * adjacent pair that forms a piece; entries made stale by an earlier merge are skipped when popped.
     */
    private final class SpmSession {
        private final String text;
        private final int[] start;
        private final int[] len;
        private final int[] prev;
        private final int[] next;
        private final PriorityQueue<Bigram> workQueue = new PriorityQueue<>(SentencePieceTokenizer::compareBigrams);

        SpmSession(String text) {
            this.text = text;
            int n = text.codePointCount(0, text.length());
            start = new int[n];
            len = new int[n];
            prev = new int[n];
            next = new int[n];
            int offset = 0;
            for (int i = 0; i < n; i++) {
                int chars = Character.charCount(text.codePointAt(offset));
                start[i] = offset;
                len[i] = chars;
                prev[i] = i - 1;
                next[i] = i + 1 < n ? i + 1 : -1;
                offset += chars;
            }
        }

        int[] tokenize() {
            for (int i = 1; i < start.length; i++) {
                tryAddBigram(i - 1, i);
            }
            while (!workQueue.isEmpty()) {
                Bigram bigram = workQueue.poll();
                int left = bigram.left;
                int right = bigram.right;
                // stale: one side was merged away, or the right side grew by merging with its own right
                if (len[left] == 0 || len[right] == 0 || len[left] + len[right] != bigram.size) {
                    continue;
                }
                len[left] += len[right];
                len[right] = 0;
                next[left] = next[right];
                if (next[right] >= 0) {
                    prev[next[right]] = left;
                }
                tryAddBigram(prev[left], left);
                tryAddBigram(left, next[left]);
            }
            IntBuffer out = new IntBuffer(start.length);
            for (int i = 0; i != -1; i = next[i]) { // text is non-empty, so symbol 0 exists
                resegment(i, out);
            }
            return out.toArray();
        }

        private void tryAddBigram(int left, int right) {
            if (left < 0 || right < 0) {
                return;
            }
            int size = len[left] + len[right];
            if (size > maxPieceChars) {
                return;
            }
            Integer id = textToId.get(text.substring(start[left], start[left] + size));
            if (id != null) {
                workQueue.add(new Bigram(left, right, scores[id], size));
            }
        }

        /** Emits a final symbol: its piece id, else its bytes (byte fallback), else the unknown id. */
        private void resegment(int symbol, IntBuffer out) {
            String s = text.substring(start[symbol], start[symbol] + len[symbol]);
            Integer id = textToId.get(s);
            if (id != null) {
                out.add(id);
            } else if (byteToId != null) {
                for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
                    out.add(byteToId[b & 0xff]);
                }
            } else {
                out.add(unkId);
            }
        }
    }

    /** A growable int array, to avoid boxing every token id. */
    private static final class IntBuffer {
        private int[] data;
        private int size;

        IntBuffer(int capacity) {
            data = new int[Math.max(capacity, 4)];
        }

        void add(int v) {
            if (size == data.length) {
                data = Arrays.copyOf(data, size * 2);
            }
            data[size++] = v;
        }

        int[] toArray() {
            return Arrays.copyOf(data, size);
        }
    }

    // ---- decoding -------------------------------------------------------------------------------------

    @Override
    public String decode(int[] ids) {
        StringBuilder out = new StringBuilder(ids.length * 4);
        ByteArrayOutputStream pendingBytes = new ByteArrayOutputStream();
        boolean dropSpace = false; // set by a BOS: the next text loses the space prefix SentencePiece added
        for (int id : ids) {
            if (id < 0 || id >= types.length) {
                throw new HfpruneException("token id " + id + " is outside the vocabulary (size " + types.length + ")");
            }
            if (idToByte[id] >= 0) {
                pendingBytes.write(idToByte[id]);
                continue;
            }
            dropSpace = append(out, flush(pendingBytes), dropSpace);
            if (id == bosId) {
                dropSpace = true;
            } else if (decodedText[id] != null) {
                dropSpace = append(out, decodedText[id], dropSpace);
            }
            // other control, unknown and unused tokens print nothing
        }
        append(out, flush(pendingBytes), dropSpace);
        return out.toString();
    }

    private static String flush(ByteArrayOutputStream bytes) {
        if (bytes.size() == 0) {
            return "";
        }
        String s = new String(bytes.toByteArray(), StandardCharsets.UTF_8); // malformed input becomes U+FFFD
        bytes.reset();
        return s;
    }

    /** Appends s, dropping its leading space if one is due; returns whether a drop is still due. */
    private static boolean append(StringBuilder out, String s, boolean dropSpace) {
        if (s.isEmpty()) {
            return dropSpace;
        }
        out.append(s, dropSpace && s.charAt(0) == ' ' ? 1 : 0, s.length());
        return false;
    }

    // ---- accessors ------------------------------------------------------------------------------------

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
        return pieces.size();
    }

    public int unkId() {
        return unkId;
    }

    /** The pieces as stored (with {@code ▁}, byte tokens as {@code <0xNN>}), indexed by id. */
    public List<String> pieces() {
        return pieces;
    }

    public float[] scores() {
        return scores.clone();
    }

    /** Token types ({@link #TYPE_NORMAL} ...), indexed by id. */
    public int[] types() {
        return types.clone();
    }

    public boolean addSpacePrefix() {
        return addSpacePrefix;
    }

    /** Whether all 256 {@code <0xNN>} byte tokens exist, so characters outside the vocabulary are kept as bytes. */
    public boolean hasByteFallback() {
        return byteToId != null;
    }
}
