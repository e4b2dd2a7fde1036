package ai.hfprune.engine.tokenizer;

import ai.hfprune.engine.io.GgufFile;
import ai.hfprune.engine.testing.Assets;
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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real LLaMA / LLaMA-2 tokenizer (32,000 SentencePiece pieces, byte fallback) against llama.cpp's own test
 * vectors ({@code ggml-vocab-llama-spm.gguf.inp/.out}, tokenized there without special tokens): hfprune's GGUF
 * tokenizer and its converted tokenizer.json (through DJL's Hugging Face tokenizers) give every expected id.
 */
class LlamaSpmVectorsTest {

    private static final String DIR = "tokenizers/llama-spm/";

    /** One of llama.cpp's vectors: the text and the ids it expects. */
    record Vector(String text, int[] ids) {
    }

    @BeforeAll
    static void offline() {
        System.setProperty("ai.djl.offline", "true");
    }

    /** llama.cpp's test-tokenizer-0: inputs split on lines {@code __ggml_vocab_test__}, one line of ids per input. */
    static List<Vector> vectors() throws Exception {
        String inp = Files.readString(Assets.require(DIR + "ggml-vocab-llama-spm.gguf.inp"), StandardCharsets.UTF_8);
        List<String> out = Files.readAllLines(Assets.require(DIR + "ggml-vocab-llama-spm.gguf.out"), StandardCharsets.UTF_8);
        String[] texts = inp.split("\n__ggml_vocab_test__\n", -1);
        List<Vector> vectors = new ArrayList<>();
        for (int i = 0; i < out.size(); i++) {
            String line = out.get(i).strip();
            int[] ids = line.isEmpty() ? new int[0] : Arrays.stream(line.split("\\s+")).mapToInt(Integer::parseInt).toArray();
            vectors.add(new Vector(texts[i], ids));
        }
        assertEquals(46, vectors.size());
        return vectors;
    }

    static SentencePieceTokenizer llama() {
        try (GgufFile gguf = GgufFile.open(Assets.require(DIR + "ggml-vocab-llama-spm.gguf"))) {
            return SentencePieceTokenizer.fromGguf(gguf);
        }
    }

    @Test
    void theGgufTokenizerGivesEveryVector() throws Exception {
        SentencePieceTokenizer spm = llama();
        assertEquals(32000, spm.vocabSize());
        assertTrue(spm.hasByteFallback());
        assertEquals(List.of(), wrong(spm));
    }

    @Test
    void theConvertedTokenizerJsonGivesEveryVector(@TempDir Path dir) throws Exception {
        SentencePieceTokenizer spm = llama();
        new ObjectMapper().writeValue(dir.resolve("tokenizer.json").toFile(), SentencePieceConverter.tokenizerJson(spm));
        try (HfTokenizer hf = HfTokenizer.fromDirectory(dir, spm.bosId(), spm.eosId())) {
            assertEquals(List.of(), wrong(hf));
        }
    }

    /** The vectors {@code tokenizer} encodes to other ids than llama.cpp's, each with what it gave. */
    private static List<String> wrong(Tokenizer tokenizer) throws Exception {
        List<String> wrong = new ArrayList<>();
        for (Vector v : vectors()) {
            int[] ids = tokenizer.encode(v.text());
            if (!Arrays.equals(v.ids(), ids)) {
                wrong.add(show(v, ids));
            }
        }
        return wrong;
    }

    /**
     * Decoding after a BOS gives the text back, both ways (the BOS drops the space prefix encoding added; without it
     * the space stays, as llama2.c decodes).
     */
    @Test
    void decodingGivesTheTextBack(@TempDir Path dir) throws Exception {
        SentencePieceTokenizer spm = llama();
        new ObjectMapper().writeValue(dir.resolve("tokenizer.json").toFile(), SentencePieceConverter.tokenizerJson(spm));
        try (HfTokenizer hf = HfTokenizer.fromDirectory(dir, spm.bosId(), spm.eosId())) {
            for (Vector v : vectors()) {
                int[] ids = withBos(spm.bosId(), v.ids());
                assertEquals(v.text(), spm.decode(ids), "decode of " + Arrays.toString(ids));
                assertEquals(v.text(), hf.decode(ids), "tokenizer.json's decode of " + Arrays.toString(ids));
            }
        }
    }

    private static int[] withBos(int bos, int[] ids) {
        int[] out = new int[ids.length + 1];
        out[0] = bos;
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }

    private static String show(Vector v, int[] ids) {
        return "\"" + v.text().replace("\n", "\\n").replace("\t", "\\t") + "\": expected " + Arrays.toString(v.ids())
                + ", got " + Arrays.toString(ids);
    }
}
