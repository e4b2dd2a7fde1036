package ai.hfprune.engine.prune;

import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.report.PruneReportPage;
import ai.hfprune.engine.io.GgufFile;
import ai.hfprune.engine.io.GgufFile.GgmlType;
import ai.hfprune.engine.io.GgufTensorSource;
import ai.hfprune.engine.io.GgufValue;
import ai.hfprune.engine.io.HalfFloats;
import ai.hfprune.engine.io.SafetensorsWriter;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.WeightCheck;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.engine.testing.TinyCheckpoints;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static ai.hfprune.engine.prune.PlannerTest.assertFails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Saving a pruned model as GGUF: read back by hfprune's own GGUF reader it is the pruned model (llama for uniform
 * widths, deci for per-layer ones), the tokenizer is carried over with its types, F16/Q8_0 store what they say, and
 * refusals and failures leave nothing behind. That llama.cpp computes the same is checked in the tests module.
 */
class GgufExportTest {

    @TempDir
    Path tmp;

    @BeforeAll
    static void offline() {
        System.setProperty("ai.djl.offline", "true");
    }

    private static PrunedModel prune(Checkpoint checkpoint, PruneOptions options, long seed) {
        return Pruner.prune(checkpoint, scores(checkpoint, seed), options);
    }

    private static Scores scores(Checkpoint checkpoint, long seed) {
        return PruneFixtures.randomScores(WeightCheck.layerWidths(checkpoint.config(), checkpoint.weights()), seed);
    }

    private static void save(Checkpoint source, PrunedModel model, Path out, ExportFormat format, GgmlType type) {
        PruneReport report = PruneReport.of(source, scores(source, 0), 32, model);
        ModelExport.save(source, model, report, out,
                new ModelExport.Options(format, type, SafetensorsWriter.NO_SHARDING, false), n -> { });
    }

    @Test
    void uniformWidthsAreLlamaWithHeadLengthsAndTheSameWeights() {
        Path out = tmp.resolve("uniform");
        try (Checkpoint in = Checkpoint.open(Assets.stories260K())) {
            PrunedModel p = prune(in, PruneOptions.uniform(0.25, 0.25), 1);
            save(in, p, out, ExportFormat.GGUF, GgmlType.F32);
            assertEquals(List.of(GgufExport.FILE, PruneReport.FILE, PruneReportPage.FILE), list(out), "GGUF alone: no Hugging Face files");
            JsonNode output = PruneReport.read(out).json().get("output");
            assertEquals("gguf", output.get("format").asText());
            assertEquals("llama", output.at("/gguf/architecture").asText());
            assertEquals("f32", output.at("/gguf/tensor_type").asText());
            try (Checkpoint saved = Checkpoint.open(out.resolve(GgufExport.FILE))) {
                GgufFile gguf = ((GgufTensorSource) saved.weights()).gguf();
                assertEquals("llama", gguf.string("general.architecture"));
                assertEquals(6L, gguf.number("llama.attention.head_count"));
                assertEquals(3L, gguf.number("llama.attention.head_count_kv"));
                assertEquals(8L, gguf.number("llama.attention.key_length"), "head_dim, no longer 64 / 6");
                assertEquals(8L, gguf.number("llama.attention.value_length"));
                assertEquals(129L, gguf.number("llama.feed_forward_length"));
                for (String name : p.weights().names()) { // GGUF in, GGUF out: Q/K rows stay in llama.cpp's order
                    assertArrayEquals(p.weights().readFloats(name), saved.weights().readFloats(name), 0f, name);
                }
                assertEquals(p.weights().names(), saved.weights().names(), "tied: no output.weight");
                assertEquals(tokenizerKeys(in), tokenizerKeys(saved), "the tokenizer is carried over with its types");
                assertArrayEquals(in.tokenizer().encode("Once upon a time"), saved.tokenizer().encode("Once upon a time"));
            }
        }
    }

    @Test
    void perLayerWidthsAreDeciAndComputeThePrunedModel() {
        Path out = tmp.resolve("global");
        try (Checkpoint in = Checkpoint.open(Assets.stories260K())) {
            PrunedModel p = prune(in, PruneOptions.uniform(0.5, 0.5).withAllocation(Allocation.GLOBAL), 2);
            LayerWidths widths = p.widths();
            assertFalse(widths.isUniform(), widths.toString());
            save(in, p, out, ExportFormat.BOTH, GgmlType.F32);
            assertTrue(Files.isRegularFile(out.resolve("model.safetensors")), "both formats side by side");
            assertEquals("deci", PruneReport.read(out).json().at("/output/gguf/architecture").asText());
            try (Checkpoint saved = Checkpoint.open(out.resolve(GgufExport.FILE))) {
                GgufFile gguf = ((GgufTensorSource) saved.weights()).gguf();
                assertEquals("deci", gguf.string("general.architecture"));
                assertEquals(GgufValue.i32s(widths.intermediateSizes()), gguf.typedMetadata().get("deci.feed_forward_length"));
                assertEquals(GgufValue.i32s(widths.numAttentionHeads()), gguf.typedMetadata().get("deci.attention.head_count"));
                assertEquals(GgufValue.i32s(widths.numKeyValueHeads()),
                        gguf.typedMetadata().get("deci.attention.head_count_kv"));
                assertNull(gguf.string("llama.block_count"), "no llama.* keys");
                assertEquals(widths, WeightCheck.layerWidths(saved.config(), saved.weights()));
                int[] tokens = PruneFixtures.randomTokens(in.config().vocabSize(), 24, 3);
                PruneFixtures.assertClose(PruneFixtures.logits(p.config(), p.weights(), tokens, ActivationTap.NONE),
                        PruneFixtures.logits(saved.config(), saved.weights(), tokens, ActivationTap.NONE), 1e-6, "reloaded");
            }
        }
    }

    @Test
    void f16AndQ8_0StoreMatricesSoAndKeepNormsF32() {
        try (Checkpoint in = Checkpoint.open(Assets.stories260K())) {
            PrunedModel p = prune(in, PruneOptions.uniform(0.25, 0), 3); // MLP width 129: not whole Q8_0 blocks
            for (GgmlType type : List.of(GgmlType.F16, GgmlType.Q8_0)) {
                Path out = tmp.resolve(type.name());
                save(in, p, out, ExportFormat.GGUF, type);
                try (GgufFile gguf = GgufFile.open(out.resolve(GgufExport.FILE))) {
                    Map<String, GgmlType> types = gguf.tensors().values().stream()
                            .collect(Collectors.toMap(GgufFile.TensorInfo::name, GgufFile.TensorInfo::type));
                    assertEquals(GgmlType.F32, types.get("blk.0.attn_norm.weight"));
                    assertEquals(GgmlType.F32, types.get("output_norm.weight"));
                    assertEquals(type, types.get("blk.0.attn_q.weight"));
                    assertEquals(type, types.get("token_embd.weight"));
                    assertEquals(type == GgmlType.Q8_0 ? GgmlType.F16 : type, types.get("blk.0.ffn_down.weight"),
                            "rows of 129 fall back to F16");
                    assertEquals(type == GgmlType.F16 ? 1L : 7L, gguf.number("general.file_type"));
                }
                try (Checkpoint saved = Checkpoint.open(out.resolve(GgufExport.FILE))) {
                    float[] q = p.weights().readFloats("model.layers.0.self_attn.q_proj.weight");
                    float[] got = saved.weights().readFloats("model.layers.0.self_attn.q_proj.weight");
                    if (type == GgmlType.F16) {
                        for (int i = 0; i < q.length; i++) {
                            assertEquals(HalfFloats.f16ToFloat(HalfFloats.floatToF16(q[i])), got[i], 0f);
                        }
                    } else {
                        double maxAbs = 0;
                        for (float v : q) {
                            maxAbs = Math.max(maxAbs, Math.abs(v));
                        }
                        for (int i = 0; i < q.length; i++) { // half a step, and the float16 rounding of the scale
                            assertEquals(q[i], got[i], maxAbs / 127 * 0.6, "within a quantization step");
                        }
                    }
                }
            }
        }
    }

    @Test
    void refusesWhatLlamaCppCannotRunAndWritesNothing() {
        LayerWidths emptyMlp = new LayerWidths(new int[] {4, 0}, new int[] {2, 2}, new int[] {1, 1});
        assertFails(() -> GgufExport.check(emptyMlp), "layer 1 would keep 0 MLP neurons", "empty MLP or attention");
        LayerWidths noAttention = new LayerWidths(new int[] {4, 4}, new int[] {0, 2}, new int[] {0, 1});
        assertFails(() -> GgufExport.check(noAttention), "layer 0 would keep 4 MLP neurons and 0 KV heads");

        Path qwen3 = tmp.resolve("qwen3");
        TinyCheckpoints.writeTinyRandom(qwen3, "Qwen3ForCausalLM", 1, "F32", SafetensorsWriter.NO_SHARDING);
        Path out = tmp.resolve("out");
        try (Checkpoint in = Checkpoint.open(qwen3)) {
            PrunedModel p = prune(in, PruneOptions.uniform(0.25, 0), 1);
            assertFails(() -> save(in, p, out, ExportFormat.BOTH, GgmlType.F32), "q/k norms", "--format hf");
        }
        assertFalse(Files.exists(out));
    }

    @Test
    void aFailureWhileWritingTheGgufLeavesNeitherFormat() {
        Path out = tmp.resolve("pruned");
        try (Checkpoint in = Checkpoint.open(Assets.stories260K())) {
            PrunedModel p = prune(in, PruneOptions.uniform(0.25, 0), 1);
            // the Hugging Face files are written first and read every tensor once; the second read is the GGUF's
            PrunedModel failing = new PrunedModel(p.config(), new FailingSource(p.weights(),
                    "model.layers.2.mlp.up_proj.weight", 1), p.plan());
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> save(in, failing, out, ExportFormat.BOTH, GgmlType.F32));
            assertTrue(e.getMessage().contains("injected"), e.getMessage());
            assertEquals(List.of(), list(tmp), "no output and no temporary directory");
        }
    }

    private static Map<String, GgufValue> tokenizerKeys(Checkpoint c) {
        return ((GgufTensorSource) c.weights()).gguf().typedMetadata().entrySet().stream()
                .filter(e -> e.getKey().startsWith("tokenizer."))
                .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue));
    }

    private static List<String> list(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(f -> f.getFileName().toString()).sorted().toList();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
