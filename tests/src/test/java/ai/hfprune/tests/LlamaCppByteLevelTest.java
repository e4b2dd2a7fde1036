package ai.hfprune.tests;

import ai.hfprune.engine.io.SafetensorsSource.Dtype;
import ai.hfprune.engine.io.SafetensorsWriter;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.HfConfigs;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.testing.TinyCheckpoints;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A Hugging Face input with a Llama 3-style byte-level BPE tokenizer.json (built here: GPT-2's byte alphabet, a few
 * merges, Llama 3's split regex, special begin/end tokens) on a tiny random Llama: its GGUF export (tokenizer.ggml.model
 * gpt2, pre llama-bpe) loads in llama.cpp, whose tokenizer gives tokenizer.json's ids, and whose log-probabilities
 * equal hfprune's on the Hugging Face files written beside it to 1e-4.
 */
class LlamaCppByteLevelTest extends LlamaCppTestBase {

    private static final String LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final List<String> MERGES = List.of("Ġ t", "h e", "Ġt he", "i n", "a n", "e r", "o n", "Ġ a", "r e",
            "Ġ s", "e d", "Ġ w", "o u", "Ġ b", "Ġ o", "in g", "Ġ c", "Ġ l", "1 2", "' s");

    @Test
    void byteLevelTokenizerAndModelRunInLlamaCpp() throws Exception {
        Path in = tmp.resolve("llama3-like");
        int vocab = writeTokenizer(in);
        ModelConfig c = new ModelConfig("LlamaForCausalLM", vocab, 32, 48, 2, 4, 2, 8, 1e-5, 500_000.0, 128, false,
                false, false, RopeStyle.HALF, vocab - 2, vocab - 1);
        HfConfigs.write(c, in);
        SafetensorsWriter.write(in, TinyCheckpoints.randomTensors(c, 7), Dtype.F32);

        Path out = tmp.resolve("pruned");
        Cli prune = Cli.run("prune", "--model", in.toString(), "--criterion", "magnitude", "--mlp-ratio", "0.25",
                "--attn-ratio", "0.5", "--compensate", "none", "--format", "both", "--out", out.toString());
        assertEquals(0, prune.exitCode(), prune.err());
        Path gguf = out.resolve("model.gguf");

        List<String> texts = List.of("Hello world, the cat's toy", "  two spaces\tand\nnew lines\n\n",
                "Caf\u00e9 \u2603 \u65e5\u672c\u8a9e \ud83d\ude00!", "numbers 12345 and 1,000.5", "I'M here, you'll see");
        int[][] llamaIds = llamaCpp.tokenize(gguf, texts);
        try (Checkpoint input = Checkpoint.open(in)) {
            for (int i = 0; i < texts.size(); i++) {
                assertEquals(Arrays.toString(input.tokenizer().encode(texts.get(i))), Arrays.toString(llamaIds[i]),
                        "ids of \"" + texts.get(i) + "\"");
            }
        }

        int[][] windows = new int[2][];
        SplittableRandom r = new SplittableRandom(11);
        for (int w = 0; w < windows.length; w++) {
            windows[w] = r.ints(48, 0, vocab - 2).toArray();
        }
        double[][] got = llamaCpp.logProbs(gguf, windows);
        try (Checkpoint hf = Checkpoint.open(out)) { // the same pruned weights, in rotate-half order
            double[][] expected = HfpruneLogProbs.of(hf, windows);
            for (int w = 0; w < windows.length; w++) {
                for (int t = 0; t < got[w].length; t++) {
                    assertTrue(Math.abs(got[w][t] - expected[w][t]) <= 1e-4,
                            "window " + w + " position " + t + ": " + got[w][t] + " vs " + expected[w][t]);
                }
            }
        }
    }

    /** Writes tokenizer.json (and tokenizer_config.json) and returns the vocabulary size. */
    private static int writeTokenizer(Path dir) throws Exception {
        Files.createDirectories(dir);
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (String piece : byteAlphabet()) {
            vocab.put(piece, vocab.size());
        }
        for (String merge : MERGES) {
            vocab.putIfAbsent(merge.replace(" ", ""), vocab.size());
        }
        int begin = vocab.size();
        ObjectNode t = LlamaCpp.JSON.createObjectNode();
        t.put("version", "1.0");
        ArrayNode added = t.putArray("added_tokens");
        List<String> specials = List.of("<|begin_of_text|>", "<|end_of_text|>");
        for (int i = 0; i < specials.size(); i++) {
            added.addObject().put("id", begin + i).put("content", specials.get(i)).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        t.putNull("normalizer");
        ArrayNode pre = t.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
        pre.addObject().put("type", "Split").put("behavior", "Isolated").put("invert", false)
                .putObject("pattern").put("Regex", LLAMA3_SPLIT);
        pre.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true)
                .put("use_regex", false);
        t.putNull("post_processor");
        t.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", true)
                .put("use_regex", true);
        ObjectNode model = t.putObject("model").put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false).put("byte_fallback", false).put("ignore_merges", true); // as Llama 3's
        ObjectNode v = model.putObject("vocab");
        vocab.forEach(v::put);
        ArrayNode merges = model.putArray("merges");
        MERGES.forEach(merges::add);
        Files.writeString(dir.resolve("tokenizer.json"), t.toString());
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"add_bos_token\": true}");
        return begin + 2;
    }

    /** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for code points from 256 on. */
    private static List<String> byteAlphabet() {
        List<String> out = new ArrayList<>();
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            out.add(new String(Character.toChars(printable ? b : next++)));
        }
        return out;
    }
}
