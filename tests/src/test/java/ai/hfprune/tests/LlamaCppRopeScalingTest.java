package ai.hfprune.tests;

import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.testing.Assets;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * llama.cpp as the oracle for RoPE scaling: stories260K saved as a Hugging Face checkpoint, its config.json given a
 * Llama 3.1-style rope_scaling (original_max_position_embeddings 64, so that the scaling bites within 64-token windows)
 * or a linear one, is pruned to GGUF; llama.cpp, loading model.gguf (llama3 as the rope_freqs tensor, linear as
 * rope.scaling.type/factor), gives hfprune's log-probabilities to 1e-4, on the GGUF and on the Hugging Face files
 * written beside it, and the same model without the scaling gives clearly different ones.
 */
class LlamaCppRopeScalingTest extends LlamaCppTestBase {

    private static final double TOLERANCE = 1e-4;

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "llama3 | {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64}",
        "linear | {\"type\": \"linear\", \"factor\": 4.0}"})
    void llamaCppAppliesTheExportedScaling(String type, String ropeScaling) throws Exception {
        Path hf = tmp.resolve("hf-input");
        Cli save = Cli.run("prune", "--model", Assets.stories260K().toString(), "--criterion", "magnitude",
                "--mlp-ratio", "0", "--compensate", "none", "--out", hf.toString());
        assertEquals(0, save.exitCode(), save.err());
        setRopeScaling(hf, ropeScaling);

        Path out = tmp.resolve("pruned");
        Cli prune = Cli.run("prune", "--model", hf.toString(), "--criterion", "magnitude", "--mlp-ratio", "0.25",
                "--attn-ratio", "0.25", "--compensate", "none", "--format", "both", "--out", out.toString());
        assertEquals(0, prune.exitCode(), prune.err());
        Path gguf = out.resolve("model.gguf");

        int[][] windows;
        double[][] onGguf;
        try (Checkpoint checkpoint = Checkpoint.open(gguf)) {
            windows = CalibrationData.windows(List.of(LlamaCppOracleTest.heldOutText()), checkpoint.tokenizer(), 64, 2,
                    "valid-hf-head.txt");
            onGguf = HfpruneLogProbs.of(checkpoint, windows);
        }
        double[][] onHf;
        try (Checkpoint checkpoint = Checkpoint.open(out)) {
            onHf = HfpruneLogProbs.of(checkpoint, windows);
        }
        double[][] got = llamaCpp.logProbs(gguf, windows);
        assertTrue(worst(got, onGguf) <= TOLERANCE, type + ": llama.cpp vs hfprune on model.gguf differ by up to "
                + worst(got, onGguf));
        assertTrue(worst(got, onHf) <= TOLERANCE, type + ": llama.cpp vs hfprune on the Hugging Face output differ by up to "
                + worst(got, onHf));

        setRopeScaling(out, "null");
        double[][] unscaled;
        try (Checkpoint checkpoint = Checkpoint.open(out)) {
            unscaled = HfpruneLogProbs.of(checkpoint, windows);
        }
        double gap = worst(unscaled, onHf);
        assertTrue(gap > 100 * TOLERANCE, type + ": without the scaling the log-probabilities move by only " + gap);
        System.out.printf("%s: llama.cpp vs hfprune %.2e (GGUF), %.2e (HF); unscaled moves them by %.3f%n", type,
                worst(got, onGguf), worst(got, onHf), gap);
    }

    private static void setRopeScaling(Path dir, String json) throws Exception {
        Path file = dir.resolve("config.json");
        ObjectNode config = (ObjectNode) LlamaCpp.JSON.readTree(file.toFile());
        config.set("rope_scaling", LlamaCpp.JSON.readTree(json));
        LlamaCpp.JSON.writeValue(file.toFile(), config);
    }

    private static double worst(double[][] a, double[][] b) {
        double w = 0;
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i].length, b[i].length);
            for (int t = 0; t < a[i].length; t++) {
                w = Math.max(w, Math.abs(a[i][t] - b[i][t]));
            }
        }
        return w;
    }
}
