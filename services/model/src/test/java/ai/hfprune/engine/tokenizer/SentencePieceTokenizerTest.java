package ai.hfprune.engine.tokenizer;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufFile;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SentencePieceTokenizerTest {

    private static final List<String> STORIES = List.of(
            "Once upon a time",
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
            "One day, Tim saw a big, red ball. He said, \"Can I play with it?\" His mom smiled.",
            "The cat and the dog were friends.  They played all day!",
            "Zoo",
            "a");

    // ---- locating the real models -----------------------------------------------------------------------

    /** ../shared/assets: system property hfprune.assets, env HFPRUNE_ASSETS, or found walking up from the working dir. */
    static Path assetsDir() {
        for (String configured : new String[] {System.getProperty("hfprune.assets"), System.getenv("HFPRUNE_ASSETS")}) {
            if (configured != null && !configured.isBlank() && Files.isDirectory(Path.of(configured))) {
                return Path.of(configured).toAbsolutePath().normalize();
            }
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("../shared/assets").normalize();
            if (Files.isDirectory(candidate)) {
                return candidate;
            }
        }
        return null;
    }

    private static SentencePieceTokenizer load(String name) {
        Path assets = assetsDir();
        Assumptions.assumeTrue(assets != null, "assets dir (../shared/assets) not found; set -Dhfprune.assets or HFPRUNE_ASSETS");
        Path model = assets.resolve("models/" + name + "/" + name + ".gguf");
        Assumptions.assumeTrue(Files.isRegularFile(model), model + " not found");
        try (GgufFile gguf = GgufFile.open(model)) {
            return SentencePieceTokenizer.fromGguf(gguf);
        }
    }

    private static int[] withBos(Tokenizer tok, int[] ids) {
        int[] out = new int[ids.length + 1];
        out[0] = tok.bosId();
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }

    private static int[] tail(int[] ids) {
        return Arrays.copyOfRange(ids, 1, ids.length);
    }

    // ---- stories260K (512 pieces, byte fallback) --------------------------------------------------------

    @Test
    void stories260kMetadata() {
        SentencePieceTokenizer tok = load("stories260K");
        assertEquals(512, tok.vocabSize());
        assertEquals(1, tok.bosId());
        assertEquals(2, tok.eosId());
        assertEquals(0, tok.unkId());
        assertTrue(tok.hasByteFallback());
        assertTrue(tok.addSpacePrefix());
        assertEquals("<0x41>", tok.pieces().get(3 + 0x41));
    }

    /**
     * Published llama2.c tokenizations with stories260K's own vocabulary (tok512): ytmytm/llama2.c64 @ e7d77309,
     * test-tokenizer64.c expects {1, 403, 407, 261, 378} for "Once upon a time", a 24-id list for the house
     * sentence and {1, 410, 469, 347} for "Zoo" (its encode adds BOS 1, dropped here). llama2.c merges the
     * highest-scoring pair, leftmost first, like llama.cpp.
     *
     * <p>Hand derivation of "Once upon a time" from the GGUF scores (score = -rank, higher merges first):
     * text "▁Once▁upon▁a▁time"; no piece contains '▁' after its first char, so words merge independently.
     * "▁Once": pairs ▁O(319, -60), ce(331, -72) → ▁O; then ▁On(321, -62) beats ce → ▁On; then ce → [▁On, ce];
     * ▁Once(403, -144) → 403. "▁upon": on(289, -30) > ▁u(318, -59) → [▁, u, p, on] → [▁u, p, on] →
     * ▁up(350, -91) → ▁upon(407, -148). "▁a" → ▁a(261, -2). "▁time": ▁t(259, -0) → [▁t, i, m, e];
     * im(288, -29) → ime(369, -110) → ▁time(378, -119). Result 403 407 261 378.
     */
    @Test
    void stories260kPublishedIds() {
        SentencePieceTokenizer tok = load("stories260K");
        assertArrayEquals(new int[] {403, 407, 261, 378}, tok.encode("Once upon a time"));
        assertArrayEquals(tail(new int[] {1, 291, 276, 410, 293, 261, 270, 277, 372, 353, 261, 270, 290, 421, 426, 342,
                        280, 388, 312, 352, 293, 299, 262, 379}),
                tok.encode("There is a house on a hill. They call it rising sun"));
        assertArrayEquals(tail(new int[] {1, 410, 469, 347}), tok.encode("Zoo"));
        // Hand-checked: "▁dragon" has no whole-word piece: ▁d(-20) merges before on(-30), nothing else applies.
        assertArrayEquals(new int[] {403, 407, 261, 378, 432, 383, 286, 261, 376, 279, 420, 412, 428, 289},
                tok.encode("Once upon a time, there was a little dragon"));
        assertEquals(List.of("▁Once", "▁upon", "▁a", "▁time"),
                Arrays.stream(tok.encode("Once upon a time")).mapToObj(tok.pieces()::get).toList());
    }

    @Test
    void stories260kInvariantsAndRoundTrip() {
        SentencePieceTokenizer tok = load("stories260K");
        for (String text : STORIES) {
            int[] ids = tok.encode(text);
            // the pieces spell the escaped text (all its characters are pieces, so no byte tokens appear)
            StringBuilder spelled = new StringBuilder();
            for (int id : ids) {
                assertEquals(SentencePieceTokenizer.TYPE_NORMAL, tok.types()[id], "piece " + id + " of " + text);
                spelled.append(tok.pieces().get(id));
            }
            assertEquals("▁" + text.replace(' ', '▁'), spelled.toString());
            // merging stops only when no adjacent pair forms a piece
            for (int i = 0; i + 1 < ids.length; i++) {
                String pair = tok.pieces().get(ids[i]) + tok.pieces().get(ids[i + 1]);
                assertFalse(tok.pieces().contains(pair), "adjacent pieces " + pair + " would merge in: " + text);
            }
            assertEquals(text, tok.decode(withBos(tok, ids)));
            assertEquals(" " + text, tok.decode(ids), "without BOS the leading space stays");
        }
    }

    @Test
    void stories260kByteFallbackRoundTrip() {
        SentencePieceTokenizer tok = load("stories260K");
        String text = "naïve café ☃ 日本 😀\nend";
        int[] ids = tok.encode(text);
        assertEquals(text, tok.decode(withBos(tok, ids)));
        // 'ï' is no piece: its UTF-8 bytes C3 AF become <0xC3><0xAF> (ids 3 + byte); 'é' is a piece (485)
        // ("▁naïve": ▁n(-38) merges, then ve(-101); "▁na" is no piece)
        assertEquals(List.of("▁n", "a", "<0xC3>", "<0xAF>", "ve"),
                Arrays.stream(ids).limit(5).mapToObj(tok.pieces()::get).toList());
        assertTrue(containsRun(ids, 3 + 0xE2, 3 + 0x98, 3 + 0x83), "☃ as bytes E2 98 83");
        assertTrue(containsRun(ids, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80), "😀 (outside the BMP) as bytes F0 9F 98 80");
        assertTrue(containsRun(ids, 3 + 0x0A), "newline as <0x0A>");
        assertTrue(IntStream.of(ids).anyMatch(id -> id == 485), "é is a piece");
        assertFalse(IntStream.of(ids).anyMatch(id -> id == 0), "no <unk> with byte fallback");
    }

    @Test
    void controlTokensAreNeverMatched() {
        SentencePieceTokenizer tok = load("stories260K");
        int[] ids = tok.encode("<s> hello </s> <unk> <0x41>");
        assertTrue(IntStream.of(ids).noneMatch(id -> id <= 2), Arrays.toString(ids));
        assertTrue(IntStream.of(ids).noneMatch(id -> tok.types()[id] == SentencePieceTokenizer.TYPE_BYTE), "'<0x41>' as text is not a byte token");
        assertEquals("<s> hello </s> <unk> <0x41>", tok.decode(withBos(tok, ids)));
    }

    @Test
    void decodeContract() {
        SentencePieceTokenizer tok = load("stories260K");
        int[] once = tok.encode("Once upon a time");
        int[] zoo = tok.encode("Zoo");
        int[] twoDocs = concat(new int[] {1}, once, new int[] {2, 1}, zoo, new int[] {2});
        assertEquals("Once upon a timeZoo", tok.decode(twoDocs), "BOS/EOS print nothing; a space is dropped after each BOS");
        assertEquals(" Once upon a time Zoo", tok.decode(concat(once, zoo)));
        assertEquals("", tok.decode(new int[] {0, 1, 2}), "<unk> decodes as empty");
        assertEquals("", tok.decode(new int[0]));
        // a truncated UTF-8 sequence (E2 98 of ☃) becomes U+FFFD, the rest decodes normally
        String broken = tok.decode(new int[] {3 + 0xE2, 3 + 0x98, 261});
        assertTrue(broken.matches("\uFFFD+ a"), broken);
        assertThrows(HfpruneException.class, () -> tok.decode(new int[] {512}));
    }

    /**
     * An independent O(n²) reference with llama2.c's loop (rescan all pairs, take the best score, first on ties)
     * must agree with the priority-queue implementation on real calibration text.
     */
    @Test
    void matchesNaiveReferenceOnTinyStories() throws Exception {
        SentencePieceTokenizer tok = load("stories260K");
        Path data = assetsDir().resolve("data/tinystories/valid-hf-head.txt");
        Assumptions.assumeTrue(Files.isRegularFile(data), data + " not found");
        String text = Files.readString(data);
        String[] docs = text.substring(0, Math.min(text.length(), 60_000)).split("\n\n");
        int checked = 0;
        for (String doc : docs) {
            if (!doc.isBlank()) {
                assertArrayEquals(naiveEncode(tok, doc), tok.encode(doc), doc);
                checked++;
            }
        }
        assertTrue(checked > 20, "checked " + checked + " documents");
    }

    private static int[] naiveEncode(SentencePieceTokenizer tok, String text) {
        Map<String, Integer> normal = new HashMap<>();
        int[] types = tok.types();
        float[] scores = tok.scores();
        for (int id = 0; id < tok.vocabSize(); id++) {
            if (types[id] == SentencePieceTokenizer.TYPE_NORMAL) {
                normal.put(tok.pieces().get(id), id);
            }
        }
        List<String> symbols = new ArrayList<>();
        ("▁" + text).replace(' ', '▁').codePoints().forEach(cp -> symbols.add(new String(Character.toChars(cp))));
        while (true) {
            int best = -1;
            float bestScore = Float.NEGATIVE_INFINITY;
            for (int i = 0; i + 1 < symbols.size(); i++) {
                Integer id = normal.get(symbols.get(i) + symbols.get(i + 1));
                if (id != null && scores[id] > bestScore) {
                    best = i;
                    bestScore = scores[id];
                }
            }
            if (best < 0) {
                break;
            }
            symbols.set(best, symbols.get(best) + symbols.remove(best + 1));
        }
        List<Integer> ids = new ArrayList<>();
        for (String s : symbols) {
            Integer id = normal.get(s);
            if (id != null) {
                ids.add(id);
            } else {
                for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
                    ids.add(tok.pieces().indexOf(String.format("<0x%02X>", b & 0xff)));
                }
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    // ---- babyllama-tok105 (characters only, no byte fallback) -------------------------------------------

    @Test
    void tok105CharacterIds() {
        SentencePieceTokenizer tok = load("babyllama-tok105");
        assertEquals(105, tok.vocabSize());
        assertFalse(tok.hasByteFallback());
        // the vocabulary is <unk>, <s>, </s>, then single characters only, so no merge can apply:
        // the expected ids are just each character's index in the piece list
        assertTrue(tok.pieces().subList(3, 105).stream().allMatch(p -> p.codePointCount(0, p.length()) == 1));
        for (String text : STORIES) {
            int[] expected = ("▁" + text.replace(' ', '▁')).codePoints()
                    .map(cp -> tok.pieces().indexOf(new String(Character.toChars(cp)))).toArray();
            assertArrayEquals(expected, tok.encode(text), text);
            assertEquals(text, tok.decode(withBos(tok, tok.encode(text))));
        }
        assertArrayEquals(new int[] {3, 34, 9, 22, 4}, tok.encode("Once"));
    }

    @Test
    void tok105UnknownCharacters() {
        SentencePieceTokenizer tok = load("babyllama-tok105");
        int[] ids = tok.encode("naïve café ☃ 日本 😀");
        // ▁ n a <unk> v e ▁ c a f é ▁ <unk> ▁ <unk> <unk> ▁ <unk>: one <unk> per unknown character, not per byte
        assertArrayEquals(new int[] {3, 9, 5, 0, 28, 4, 3, 22, 5, 24, 78, 3, 0, 3, 0, 0, 3, 0}, ids);
        assertEquals("nave café   ", tok.decode(withBos(tok, ids)), "<unk> decodes as empty");
    }

    // ---- synthetic vocabularies: merges checked by hand -------------------------------------------------

    /** <unk>, <s>, </s>, 256 byte tokens (ids 3..258), then the given pieces with their scores (ids from 259). */
    private static SentencePieceTokenizer synthetic(boolean byteFallback, boolean addSpacePrefix, Object... pieceScores) {
        List<String> pieces = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        List<Integer> types = new ArrayList<>(List.of(2, 3, 3));
        List<Float> scores = new ArrayList<>(List.of(0f, 0f, 0f));
        if (byteFallback) {
            for (int b = 0; b < 256; b++) {
                pieces.add(String.format("<0x%02X>", b));
                types.add(6);
                scores.add(0f);
            }
        }
        for (int i = 0; i < pieceScores.length; i += 2) {
            pieces.add((String) pieceScores[i]);
            types.add(1);
            scores.add(((Number) pieceScores[i + 1]).floatValue());
        }
        float[] s = new float[scores.size()];
        for (int i = 0; i < s.length; i++) {
            s[i] = scores.get(i);
        }
        return new SentencePieceTokenizer(pieces, s, types.stream().mapToInt(Integer::intValue).toArray(), 1, 2, 0, addSpacePrefix);
    }

    private static List<String> pieces(SentencePieceTokenizer tok, String text) {
        return Arrays.stream(tok.encode(text)).mapToObj(tok.pieces()::get).toList();
    }

    @Test
    void syntheticMergesAndTies() {
        SentencePieceTokenizer tok = synthetic(true, false,
                "a", -10, "b", -10, "c", -10, "▁", -10,
                "ab", -1, "bc", -1, "aa", -2, "abab", -3, "cab", -0.5);
        // "abc": ab and bc tie at -1 → the leftmost pair (ab) merges; "abc" is no piece
        assertEquals(List.of("ab", "c"), pieces(tok, "abc"));
        // "aaa": both aa pairs tie → leftmost
        assertEquals(List.of("aa", "a"), pieces(tok, "aaa"));
        // "abab": ab (0,1) then ab (2,3), then the new pair ab+ab forms abab
        assertEquals(List.of("abab"), pieces(tok, "abab"));
        // "cab": ab(-1) merges first, then c+ab = cab(-0.5); a higher score does not reorder earlier merges
        assertEquals(List.of("cab"), pieces(tok, "cab"));
        // "bcab": bc(-1) at 0 and ab(-1) at 2 tie → bc first, then ab; bc+ab is no piece
        assertEquals(List.of("bc", "ab"), pieces(tok, "bcab"));
        assertEquals(259 + 2, tok.encode("c")[0]);
        assertFalse(tok.addSpacePrefix());
        assertEquals(List.of("a", "▁", "b"), pieces(tok, "a b"));
    }

    @Test
    void syntheticByteFallback() {
        SentencePieceTokenizer tok = synthetic(true, true, "▁", -1, "a", -2, "▁a", -0.5);
        assertTrue(tok.hasByteFallback());
        // "a€": "▁a" merges; € (U+20AC) is no piece → its three UTF-8 bytes E2 82 AC → ids 3 + byte
        assertArrayEquals(new int[] {261, 3 + 0xE2, 3 + 0x82, 3 + 0xAC}, tok.encode("a€"));
        assertEquals("a€", tok.decode(new int[] {1, 261, 3 + 0xE2, 3 + 0x82, 3 + 0xAC}));
        assertEquals(" a€", tok.decode(new int[] {261, 3 + 0xE2, 3 + 0x82, 3 + 0xAC}));
        // a byte token for the space right after BOS is the dropped prefix as well
        assertEquals("a", tok.decode(new int[] {1, 3 + 0x20, 259 + 1}));
        assertArrayEquals(new int[0], tok.encode(""));
    }

    @Test
    void syntheticWithoutByteFallback() {
        SentencePieceTokenizer tok = synthetic(false, true, "▁", -1, "a", -2, "▁a", -0.5);
        assertFalse(tok.hasByteFallback());
        // ids: <unk> 0, <s> 1, </s> 2, ▁ 3, a 4, ▁a 5; each unknown code point is one <unk>
        assertArrayEquals(new int[] {5, 0, 4, 3, 0}, tok.encode("a€a 😀"));
    }

    @Test
    void controlPieceDoesNotMerge() {
        List<String> pieces = List.of("<unk>", "<s>", "</s>", "a", "b", "ab");
        int[] types = {2, 3, 3, 1, 1, 3}; // "ab" is a control token
        SentencePieceTokenizer tok = new SentencePieceTokenizer(pieces, new float[6], types, 1, 2, 0, false);
        assertArrayEquals(new int[] {3, 4}, tok.encode("ab"));
        assertEquals("a", tok.decode(new int[] {3, 5}), "control tokens print nothing");
    }

    @Test
    void rejectsInconsistentVocabulary() {
        assertThrows(HfpruneException.class,
                () -> new SentencePieceTokenizer(List.of("<unk>", "<s>"), new float[2], new int[] {2, 3}, 1, 2, 0, true));
        assertThrows(HfpruneException.class,
                () -> new SentencePieceTokenizer(List.of("<unk>", "<s>", "</s>"), new float[2], new int[] {2, 3, 3}, 1, 2, 0, true));
    }

    // ---- helpers ----------------------------------------------------------------------------------------

    private static boolean containsRun(int[] ids, int... run) {
        for (int i = 0; i + run.length <= ids.length; i++) {
            if (Arrays.equals(Arrays.copyOfRange(ids, i, i + run.length), run)) {
                return true;
            }
        }
        return false;
    }

    private static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }
}
