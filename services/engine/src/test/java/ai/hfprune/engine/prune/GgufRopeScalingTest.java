package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufFile;
import ai.hfprune.engine.io.GgufFile.GgmlType;
import ai.hfprune.engine.io.GgufTensorSource;
import ai.hfprune.engine.io.SafetensorsWriter;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.GgufConfigs;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeScaling;
import ai.hfprune.engine.model.SlidingWindow;
import ai.hfprune.engine.model.WeightCheck;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.testing.Assets;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.FloatBuffer;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * RoPE scaling and sliding windows through {@code --format gguf}: stories260K saved as a Hugging Face checkpoint with
 * a rope_scaling added to its config.json is exported to GGUF (llama3 as llama.cpp's rope_freqs tensor, linear as
 * rope.scaling.*), read back by hfprune with the same logits, which differ from the unscaled model's. That llama.cpp
 * computes the same on these files is checked in the tests module (LlamaCppRopeScalingTest).
 */
class GgufRopeScalingTest {

    @TempDir
    Path tmp;

    @BeforeAll
    static void offline() {
        System.setProperty("ai.djl.offline", "true");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama3", "linear"})
    void scaledModelSurvivesTheGgufRoundTrip(String type) throws Exception {
        String scaling = type.equals("llama3")
                ? "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
                        + " \"original_max_position_embeddings\": 64}"
                : "{\"type\": \"linear\", \"factor\": 4.0}";
        Path hf = scaledHuggingFaceCopy(tmp, scaling);
        Path out = tmp.resolve("gguf");
        try (Checkpoint in = Checkpoint.open(hf)) {
            PrunedModel p = Pruner.prune(in, PruneFixtures.randomScores(WeightCheck.layerWidths(in.config(), in.weights()), 3),
                    PruneOptions.uniform(0.25, 0.25));
            ModelExport.save(in, p, PruneReport.of(in, PruneFixtures.randomScores(
                            WeightCheck.layerWidths(in.config(), in.weights()), 3), 32, p), out,
                    new ModelExport.Options(ExportFormat.BOTH, GgmlType.F32, SafetensorsWriter.NO_SHARDING, false), n -> { });
        }
        try (Checkpoint hfOut = Checkpoint.open(out); Checkpoint gguf = Checkpoint.open(out.resolve(GgufExport.FILE))) {
            ModelConfig c = gguf.config();
            GgufFile file = ((GgufTensorSource) gguf.weights()).gguf();
            if (type.equals("llama3")) {
                assertInstanceOf(RopeScaling.FrequencyDivisors.class, c.ropeScaling());
                FloatBuffer divisors = FloatBuffer.allocate(c.headDim() / 2);
                file.readFloats(GgufConfigs.ROPE_FREQS, divisors);
                // head_dim 8, θ = 10⁴: wavelengths 6.3 (< 64/4: 1), 62.8 (between: 1 / ((1 - s)/8 + s) with
                // s = (64/62.83 - 1)/3 = 0.00620), 628 and 6283 (> 64: 8)
                double s = (64 / (2 * Math.PI * 10) - 1) / 3;
                float[] expected = {1, (float) (1 / ((1 - s) / 8 + s)), 8, 8};
                for (int i = 0; i < 4; i++) {
                    assertEquals(expected[i], divisors.get(i), 1e-6 * expected[i], "rope_freqs[" + i + "]");
                }
                assertNull(file.string("llama.rope.scaling.type"));
            } else {
                assertEquals(new RopeScaling.Linear(4), c.ropeScaling());
                assertEquals("linear", file.string("llama.rope.scaling.type"));
                assertEquals(4.0, file.number("llama.rope.scaling.factor").doubleValue());
                assertNull(file.tensors().get(GgufConfigs.ROPE_FREQS));
            }
            int[] tokens = PruneFixtures.randomTokens(c.vocabSize(), 64, 5);
            float[] fromHf = PruneFixtures.logits(hfOut.config(), hfOut.weights(), tokens, ActivationTap.NONE);
            float[] fromGguf = PruneFixtures.logits(c, gguf.weights(), tokens, ActivationTap.NONE);
            PruneFixtures.assertClose(fromHf, fromGguf, 1e-4, "GGUF vs Hugging Face output logits");
            ModelConfig unscaled = new ModelConfig(c.architecture(), c.vocabSize(), c.hiddenSize(), c.intermediateSize(),
                    c.numHiddenLayers(), c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.rmsNormEps(),
                    c.ropeTheta(), c.maxPositionEmbeddings(), c.tieWordEmbeddings(), c.attentionBias(), c.qkNorm(),
                    c.ropeStyle(), c.bosTokenId(), c.eosTokenId());
            double gap = PruneFixtures.maxDifference(fromGguf,
                    PruneFixtures.logits(unscaled, gguf.weights(), tokens, ActivationTap.NONE));
            assertTrue(gap > 1e-2, "the scaling changes the logits by only " + gap);
        }
    }

    /** A GGUF-read llama3 scaling is per-frequency factors, which config.json cannot hold: --format hf refuses at once. */
    @Test
    void frequencyFactorsFromGgufAreRefusedForHuggingFaceOutput() throws Exception {
        Path hf = scaledHuggingFaceCopy(tmp, "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                + " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64}");
        Path gguf = tmp.resolve("gguf");
        try (Checkpoint in = Checkpoint.open(hf)) {
            PrunedModel p = Pruner.prune(in, PruneFixtures.randomScores(WeightCheck.layerWidths(in.config(), in.weights()), 3),
                    PruneOptions.uniform(0, 0));
            ModelExport.save(in, p, PruneReport.of(in, PruneFixtures.randomScores(
                            WeightCheck.layerWidths(in.config(), in.weights()), 3), 32, p), gguf,
                    new ModelExport.Options(ExportFormat.GGUF, GgmlType.F32, SafetensorsWriter.NO_SHARDING, false), n -> { });
        }
        try (Checkpoint in = Checkpoint.open(gguf.resolve(GgufExport.FILE))) {
            HfpruneException e = assertThrows(HfpruneException.class, () -> ModelExport.checkBefore(in.path(), in,
                    tmp.resolve("hf-out"), ModelExport.Options.hf(SafetensorsWriter.NO_SHARDING, false)));
            assertTrue(e.getMessage().contains("rope_freqs"), e.getMessage());
            assertTrue(e.getMessage().contains("--format gguf"), e.getMessage());
        }
    }

    @Test
    void aWindowShorterThanTheContextBecomesTheGgufContextLength() {
        ModelConfig c = new ModelConfig("MistralForCausalLM", 64, 32, 48, 2, 4, 2, 8, 1e-5, 1e4, 4096, false, false,
                false, ai.hfprune.engine.model.RopeStyle.HALF, 1, 2, RopeScaling.NONE, SlidingWindow.fromLayer(256, 0, 2));
        assertEquals(256, GgufExport.contextLength(c));
        ModelConfig wide = c.withWidths(48, 4, 2);
        assertEquals(c, wide);
        ModelConfig noWindow = new ModelConfig("MistralForCausalLM", 64, 32, 48, 2, 4, 2, 8, 1e-5, 1e4, 4096, false,
                false, false, ai.hfprune.engine.model.RopeStyle.HALF, 1, 2);
        assertEquals(4096, GgufExport.contextLength(noWindow));
    }

    /** stories260K saved as a Hugging Face directory (nothing pruned), its config.json given {@code ropeScaling}. */
    static Path scaledHuggingFaceCopy(Path tmp, String ropeScaling) throws Exception {
        Path hf = tmp.resolve("hf-scaled");
        try (Checkpoint in = Checkpoint.open(Assets.stories260K())) {
            PrunedModel p = Pruner.prune(in, PruneFixtures.randomScores(WeightCheck.layerWidths(in.config(), in.weights()), 1),
                    PruneOptions.uniform(0, 0));
            ModelExport.save(in, p, PruneReport.of(in, PruneFixtures.randomScores(
                            WeightCheck.layerWidths(in.config(), in.weights()), 1), 32, p), hf,
                    ModelExport.Options.hf(SafetensorsWriter.NO_SHARDING, false), n -> { });
        }
        JsonMapper json = new JsonMapper();
        ObjectNode config = (ObjectNode) json.readTree(hf.resolve("config.json").toFile());
        config.set("rope_scaling", json.readTree(ropeScaling));
        json.writeValue(hf.resolve("config.json").toFile(), config);
        return hf;
    }
}
