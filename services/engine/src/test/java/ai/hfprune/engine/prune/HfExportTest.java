package ai.hfprune.engine.prune;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.report.PruneReportPage;
import ai.hfprune.engine.io.SafetensorsSource;
import ai.hfprune.engine.io.SafetensorsWriter;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.HfConfigs;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.model.WeightCheck;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.engine.testing.TinyCheckpoints;
import ai.hfprune.engine.tokenizer.HfTokenizer;
import ai.hfprune.engine.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static ai.hfprune.engine.prune.PlannerTest.assertFails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Saving a pruned model as a Hugging Face directory: reload, equal logits and text, atomicity, refusals, report. */
class HfExportTest {

    @TempDir
    Path tmp;

    @BeforeAll
    static void offline() {
        System.setProperty("ai.djl.offline", "true");
    }

    private record Pruned(PrunedModel model, Scores scores) {
    }

    private static Pruned prune(Checkpoint checkpoint, PruneOptions options, long seed) {
        Scores scores = PruneFixtures.randomScores(WeightCheck.layerWidths(checkpoint.config(), checkpoint.weights()), seed);
        return new Pruned(Pruner.prune(checkpoint, scores, options), scores);
    }

    private static void save(Checkpoint checkpoint, Pruned p, Path out, boolean force, long maxShardBytes) {
        save(checkpoint, p.model(), p.scores(), out, force, maxShardBytes);
    }

    private static void save(Checkpoint checkpoint, PrunedModel model, Scores scores, Path out, boolean force, long maxShardBytes) {
        PruneReport report = PruneReport.of(checkpoint, scores, 32, model);
        HfExport.save(checkpoint, model, report, out, new HfExport.Options(maxShardBytes, force), n -> { });
    }

    @Test
    void stories260KReloadsWithTheSameLogitsAndText() {
        Path out = tmp.resolve("stories-pruned");
        try (Checkpoint gguf = Checkpoint.open(Assets.stories260K())) {
            Pruned p = prune(gguf, PruneOptions.uniform(0.25, 0.25), 1);
            save(gguf, p, out, false, SafetensorsWriter.NO_SHARDING);
            for (String file : List.of("model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
                    "tokenizer_config.json", PruneReport.FILE, PruneReportPage.FILE)) {
                assertTrue(Files.isRegularFile(out.resolve(file)), file);
            }
            assertTrue(HfConfigs.readLayerWidths(out).isEmpty(), "uniform pruning keeps config.json standard");

            try (Checkpoint saved = Checkpoint.open(out)) {
                assertEquals(RopeStyle.HALF, saved.config().ropeStyle());
                assertEquals(172 - 43, saved.config().intermediateSize());
                assertEquals(6, saved.config().numAttentionHeads());
                assertEquals(3, saved.config().numKeyValueHeads());
                assertEquals(gguf.config().tieWordEmbeddings(), saved.config().tieWordEmbeddings());
                assertEquals(p.model().parameters(), ParameterCount.of(saved.weights()));

                int[] tokens = PruneFixtures.randomTokens(512, 24, 9);
                PruneFixtures.assertClose(
                        PruneFixtures.logits(p.model().config(), p.model().weights(), tokens, ActivationTap.NONE),
                        PruneFixtures.logits(saved.config(), saved.weights(), tokens, ActivationTap.NONE), 1e-4, "reloaded");

                Tokenizer ggufTokenizer = gguf.tokenizer();
                Tokenizer hfTokenizer = saved.tokenizer();
                assertInstanceOf(HfTokenizer.class, hfTokenizer);
                String prompt = "Once upon a time";
                assertArrayEquals(ggufTokenizer.encode(prompt), hfTokenizer.encode(prompt));
                int[] generated = greedy(p.model().config(), p.model().weights(), ggufTokenizer, prompt, 24);
                // the reloaded model picks the same next token after every prefix, so its greedy text is the same
                int vocab = saved.config().vocabSize();
                float[] logits = PruneFixtures.logits(saved.config(), saved.weights(), generated, ActivationTap.NONE);
                for (int t = hfTokenizer.encode(prompt).length + 1; t < generated.length; t++) {
                    assertEquals(generated[t], argMax(logits, (t - 1) * vocab, vocab), "token " + t);
                }
                String text = hfTokenizer.decode(generated);
                assertEquals(ggufTokenizer.decode(generated), text);
                assertTrue(text.startsWith(prompt) && text.length() > prompt.length() + 20, text);
            }
        }
    }

    @Test
    void globalAllocationWritesPerLayerWidths() throws Exception {
        Path out = tmp.resolve("global");
        try (Checkpoint gguf = Checkpoint.open(Assets.stories260K())) {
            Pruned p = prune(gguf, PruneOptions.uniform(0.4, 0.25).withAllocation(Allocation.GLOBAL), 2);
            LayerWidths widths = p.model().widths();
            assertFalse(widths.isUniform(), "random scores give different widths: " + widths);
            save(gguf, p, out, false, SafetensorsWriter.NO_SHARDING);

            assertEquals(widths, HfConfigs.readLayerWidths(out).orElseThrow());
            JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
            assertEquals(widths.maxIntermediateSize(), config.get("intermediate_size").asInt(), "the scalar is the upper bound");
            assertEquals(5, config.get(HfConfigs.INTERMEDIATE_SIZES).size());
            try (Checkpoint saved = Checkpoint.open(out)) {
                WeightCheck.checkLayerWidths(saved.config(), widths, saved.weights());
                int[] tokens = PruneFixtures.randomTokens(512, 16, 3);
                PruneFixtures.assertClose(
                        PruneFixtures.logits(p.model().config(), p.model().weights(), tokens, ActivationTap.NONE),
                        PruneFixtures.logits(saved.config(), saved.weights(), tokens, ActivationTap.NONE), 1e-4, "reloaded");

                // a non-uniform model can be pruned again: each layer loses the ratio of its own width
                PrunedModel again = prune(saved, PruneOptions.uniform(0.5, 0), 8).model();
                for (int l = 0; l < 5; l++) {
                    int width = widths.intermediateSize(l);
                    assertEquals(width - Math.round(0.5 * width), again.widths().intermediateSize(l));
                }
                // but an attention ratio must remove whole KV groups in every layer
                int odd = IntStream.range(0, 5).filter(l -> widths.numKeyValueHeads(l) % 2 == 1).findFirst().orElseThrow();
                assertFails(() -> prune(saved, PruneOptions.uniform(0, 0.5), 8), "layer " + odd + " has "
                        + widths.numKeyValueHeads(odd) + " KV groups");
            }
        }
    }

    @Test
    void huggingFaceInputKeepsItsTokenizerFilesAndShards() throws Exception {
        Path in = tmp.resolve("tiny-qwen3");
        TinyCheckpoints.writeTinyRandom(in, "Qwen3ForCausalLM", 5, "BF16", SafetensorsWriter.NO_SHARDING);
        Files.writeString(in.resolve("tokenizer.json"), WORD_LEVEL_TOKENIZER);
        Files.writeString(in.resolve("tokenizer_config.json"), "{\"tokenizer_class\": \"PreTrainedTokenizerFast\"}\n");
        Files.writeString(in.resolve("generation_config.json"), "{\"bos_token_id\": 1, \"eos_token_id\": [2, 3], \"top_p\": 0.8}\n");
        Path out = tmp.resolve("tiny-pruned");
        try (Checkpoint hf = Checkpoint.open(in)) {
            Pruned p = prune(hf, PruneOptions.uniform(0.5, 0.5).withSkipLayers(Set.of(1)), 4);
            save(hf, p, out, false, 4096);
            assertTrue(Files.isRegularFile(out.resolve(SafetensorsSource.INDEX_FILE)), "sharded above 4096 bytes");
            for (String file : List.of("tokenizer.json", "tokenizer_config.json", "generation_config.json")) {
                assertEquals(Files.readString(in.resolve(file)), Files.readString(out.resolve(file)), file + " is copied");
            }
            assertFalse(Files.exists(out.resolve("special_tokens_map.json")));
            // skipping a layer makes the widths differ, so config.json lists them
            assertEquals(new LayerWidths(new int[] {24, 48}, new int[] {2, 4}, new int[] {1, 2}),
                    HfConfigs.readLayerWidths(out).orElseThrow());
            try (Checkpoint saved = Checkpoint.open(out)) {
                assertArrayEquals(new int[] {3, 4}, saved.tokenizer().encode("hello world"));
                int[] tokens = PruneFixtures.randomTokens(64, 16, 2);
                PruneFixtures.assertClose(
                        PruneFixtures.logits(p.model().config(), p.model().weights(), tokens, ActivationTap.NONE),
                        PruneFixtures.logits(saved.config(), saved.weights(), tokens, ActivationTap.NONE), 1e-5, "reloaded");
            }
        }
    }

    @Test
    void aFailureLeavesNothingBehind() throws Exception {
        Path out = tmp.resolve("pruned");
        try (Checkpoint gguf = Checkpoint.open(Assets.stories260K())) {
            Pruned p = prune(gguf, PruneOptions.uniform(0.25, 0), 1);
            PrunedModel failing = new PrunedModel(p.model().config(),
                    new FailingSource(p.model().weights(), "model.layers.3.mlp.up_proj.weight"), p.model().plan());
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> save(gguf, failing, p.scores(), out, false, SafetensorsWriter.NO_SHARDING));
            assertTrue(e.getMessage().contains("injected"), e.getMessage());
            assertEquals(List.of(), list(tmp), "no output and no temporary directory");

            // replacing an existing directory: it stays as it was
            Files.createDirectories(out);
            Files.writeString(out.resolve("keep.txt"), "previous");
            assertThrows(IllegalStateException.class,
                    () -> save(gguf, failing, p.scores(), out, true, SafetensorsWriter.NO_SHARDING));
            assertEquals(List.of("pruned"), list(tmp));
            assertEquals(List.of("keep.txt"), list(out));
        }
    }

    @Test
    void aNonEmptyDirectoryIsReplacedOnlyWithForce() throws Exception {
        Path out = tmp.resolve("pruned");
        Files.createDirectories(out);
        try (Checkpoint gguf = Checkpoint.open(Assets.stories260K())) {
            Pruned p = prune(gguf, PruneOptions.uniform(0.25, 0), 1);
            save(gguf, p, out, false, SafetensorsWriter.NO_SHARDING); // an empty directory is fine
            assertFails(() -> save(gguf, p, out, false, SafetensorsWriter.NO_SHARDING),
                    "output directory", "exists and is not empty", "--force");

            Files.writeString(out.resolve("stale.txt"), "from before");
            save(gguf, p, out, true, SafetensorsWriter.NO_SHARDING);
            assertFalse(Files.exists(out.resolve("stale.txt")), "--force replaces the whole directory");
            assertEquals(List.of("pruned"), list(tmp), "the previous directory is gone");
            try (Checkpoint saved = Checkpoint.open(out)) {
                assertEquals(129, saved.config().intermediateSize());
            }

            Path file = tmp.resolve("a-file");
            Files.writeString(file, "x");
            assertFails(() -> save(gguf, p, file, true, SafetensorsWriter.NO_SHARDING), "exists and is not a directory");
        }
    }

    @Test
    void theInputIsNeverReplaced() {
        Path in = tmp.resolve("tiny");
        TinyCheckpoints.writeTinyRandom(in, "LlamaForCausalLM", 1, "F32", SafetensorsWriter.NO_SHARDING);
        try (Checkpoint hf = Checkpoint.open(in)) {
            Pruned p = prune(hf, PruneOptions.uniform(0.25, 0), 1);
            assertFails(() -> save(hf, p, in, true, SafetensorsWriter.NO_SHARDING), "would replace the input model");
            assertFails(() -> save(hf, p, tmp, true, SafetensorsWriter.NO_SHARDING), "would replace the input model");
        }
        assertTrue(Files.isRegularFile(in.resolve("model.safetensors")));
    }

    @Test
    void reportDescribesThePruningAndTakesMetrics() throws Exception {
        Path out = tmp.resolve("pruned");
        try (Checkpoint gguf = Checkpoint.open(Assets.stories260K())) {
            Pruned p = prune(gguf, PruneOptions.uniform(0.25, 0.5).withRoundTo(8).withSkipLayers(Set.of(4)), 6);
            save(gguf, p, out, false, SafetensorsWriter.NO_SHARDING);

            JsonNode r = new ObjectMapper().readTree(out.resolve(PruneReport.FILE).toFile());
            assertEquals(PruneReport.FORMAT, r.get("format").asText());
            assertEquals("stories260K", r.at("/input/name").asText());
            assertEquals(gguf.sha256(), r.at("/input/sha256").asText());
            assertEquals("gguf", r.at("/input/format").asText());
            assertEquals("random", r.at("/scores/criterion").asText());
            assertEquals(3, r.at("/scores/windows").asInt());
            assertEquals(96, r.at("/scores/tokens").asInt());
            assertEquals(32, r.at("/scores/seq_len").asInt());
            assertEquals(0.25, r.at("/options/mlp_ratio").asDouble());
            assertEquals(0.5, r.at("/options/attn_ratio").asDouble());
            assertEquals("uniform", r.at("/options/allocation").asText());
            assertEquals(8, r.at("/options/round_to").asInt());
            assertEquals("[4]", r.at("/options/skip_layers").toString());
            assertEquals(ParameterCount.of(gguf.weights()), r.at("/parameters/before").asLong());
            assertEquals(p.model().parameters(), r.at("/parameters/after").asLong());
            assertEquals(5, r.get("layers").size());
            JsonNode layer0 = r.at("/layers/0");
            assertEquals(172, layer0.at("/mlp/before").asInt());
            assertEquals(128, layer0.at("/mlp/after").asInt(), "129 rounded to a multiple of 8");
            assertEquals(Arrays.toString(p.model().plan().layer(0).keptMlp()), layer0.at("/mlp/kept").toString().replace(",", ", "));
            assertEquals(2, layer0.at("/attention/kv_groups_kept").size());
            assertEquals(4, layer0.at("/attention/heads_kept").size());
            assertEquals(172, r.at("/layers/4/mlp/after").asInt(), "layer 4 is skipped");
            assertTrue(r.get("metrics").isObject() && r.get("metrics").isEmpty());

            PruneReport.addMetrics(out, Map.of("wikitext2_ppl", 12.5));
            PruneReport.addMetrics(out, Map.of("zeroshot", Map.of("piqa", 0.61)));
            JsonNode metrics = PruneReport.read(out).json().get("metrics");
            assertEquals(12.5, metrics.get("wikitext2_ppl").asDouble(), "earlier metrics are kept");
            assertEquals(0.61, metrics.at("/zeroshot/piqa").asDouble());
            assertEquals(List.of(PruneReport.FILE, PruneReportPage.FILE), list(out).stream().filter(f -> f.contains("report")).toList(),
                    "no temporary file left");
        }
        assertFails(() -> PruneReport.read(tmp), "has no prune-report.json");
    }

    // ---- helpers --------------------------------------------------------------------------------------------

    private static final String WORD_LEVEL_TOKENIZER = """
            {"version": "1.0", "truncation": null, "padding": null,
             "added_tokens": [{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false,
                               "normalized": false, "special": true}],
             "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
             "model": {"type": "WordLevel", "unk_token": "<unk>",
                       "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "hello": 3, "world": 4}}}
            """;

    /** Greedy continuation of BOS + prompt; returns all ids (with BOS). */
    private static int[] greedy(ai.hfprune.engine.model.ModelConfig c, TensorSource weights, Tokenizer tokenizer,
                                String prompt, int newTokens) {
        int[] p = tokenizer.encode(prompt);
        int[] ids = new int[1 + p.length + newTokens];
        ids[0] = tokenizer.bosId();
        System.arraycopy(p, 0, ids, 1, p.length);
        try (LlamaModel model = LlamaModel.load(c, weights, Device.cpu(), DataType.FLOAT32)) {
            for (int n = 1 + p.length; n < ids.length; n++) {
                try (NDManager batch = model.manager().newSubManager()) {
                    long[] longs = Arrays.stream(ids, 0, n).asLongStream().toArray();
                    NDArray logits = model.forward(batch.create(longs, new Shape(1, n)), ActivationTap.NONE);
                    ids[n] = (int) logits.get("0, -1, :").argMax().getLong();
                }
            }
        }
        return ids;
    }

    private static int argMax(float[] values, int from, int length) {
        int best = from;
        for (int i = from; i < from + length; i++) {
            best = values[i] > values[best] ? i : best;
        }
        return best - from;
    }

    private static List<String> list(Path dir) throws Exception {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(f -> f.getFileName().toString()).sorted().toList();
        }
    }
}
