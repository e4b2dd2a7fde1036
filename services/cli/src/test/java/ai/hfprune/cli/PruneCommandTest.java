package ai.hfprune.cli;

import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.importance.ScoresFile;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.HfConfigs;
import ai.hfprune.engine.model.RopeStyle;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code hfprune prune} end to end on stories260K, and its refusals of bad input. */
class PruneCommandTest {

    @TempDir
    static Path shared;
    static Path model;
    static Path data;
    /** Magnitude scores of stories260K, written by {@code hfprune score}. */
    static Path scores;
    /** The calibration statistics of the same windows, written by {@code hfprune score --stats}. */
    static Path stats;

    @TempDir
    Path tmp;

    record Result(int exitCode, String out, String err) {
    }

    /** The real command line (Main's error handling) with prune registered, as Main will have it. */
    static Result run(String... args) {
        CommandLine cli = Main.commandLine();
        if (!cli.getSubcommands().containsKey("prune")) {
            cli.addSubcommand(new PruneCommand());
        }
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        return new Result(cli.execute(args), out.toString(), err.toString());
    }

    @BeforeAll
    static void scoreOnce() {
        System.setProperty("ai.djl.offline", "true");
        model = Assets.resolve(Assets.DEFAULT_MODEL);
        data = Assets.resolve(Assets.DEFAULT_CALIBRATION);
        scores = shared.resolve("scores.json");
        stats = shared.resolve("stats.safetensors");
        Result r = run("score", "--model", model.toString(), "--data", data.toString(), "--criterion", "magnitude",
                "--seq-len", "32", "--max-windows", "2", "--out", scores.toString(), "--stats", stats.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("calibration statistics") && Files.isRegularFile(stats), r.out());
    }

    @Test
    void prunesFromAScoresFile() throws Exception {
        Path out = tmp.resolve("pruned");
        Result r = run("prune", "--model", model.toString(), "--scores", scores.toString(), "--stats", stats.toString(),
                "--mlp-ratio", "0.25", "--attn-ratio", "0.25", "--max-shard-size", "200KB", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("refit by least squares"), r.out());
        assertTrue(r.out().contains("-> ") && r.out().contains("parameters"), r.out());
        assertTrue(r.out().contains("172 -> 129") && r.out().contains("8 -> 6") && r.out().contains("4 -> 3"), r.out());
        assertTrue(Files.isRegularFile(out.resolve("model.safetensors.index.json")), "sharded at 200KB");
        try (Checkpoint saved = Checkpoint.open(out)) {
            assertEquals(129, saved.config().intermediateSize());
            assertEquals(RopeStyle.HALF, saved.config().ropeStyle());
            assertEquals("Once upon a time", saved.tokenizer().decode(concat(1, saved.tokenizer().encode("Once upon a time"))));
        }
        JsonNode report = new ObjectMapper().readTree(out.resolve("prune-report.json").toFile());
        assertEquals("magnitude", report.at("/scores/criterion").asText());
        assertEquals(32, report.at("/scores/seq_len").asInt());
        assertEquals("stories260K", report.at("/input/name").asText());
        assertEquals("lstsq", report.at("/compensation/method").asText());
        assertEquals(64, report.at("/compensation/calibration_tokens").asInt());
    }

    /** {@code --compensate obs}: each layer's count from the criterion, its members chosen by the refit's error. */
    @Test
    void choosesTheCutForTheRefit() throws Exception {
        ObjectMapper json = new ObjectMapper();
        JsonNode[] reports = new JsonNode[2];
        String[] methods = {"lstsq", "obs"};
        for (int i = 0; i < 2; i++) {
            Path out = tmp.resolve("compensate-" + methods[i]);
            Result r = run("prune", "--model", model.toString(), "--scores", scores.toString(), "--stats", stats.toString(),
                    "--compensate", methods[i], "--mlp-ratio", "0.25", "--attn-ratio", "0.25", "--out", out.toString());
            assertEquals(0, r.exitCode(), r.err());
            assertTrue(r.out().contains("172 -> 129") && r.out().contains("4 -> 3"), r.out());
            reports[i] = json.readTree(out.resolve("prune-report.json").toFile());
            assertEquals(methods[i], reports[i].at("/compensation/method").asText());
            assertEquals(64, reports[i].at("/compensation/calibration_tokens").asInt());
        }
        assertTrue(json.writeValueAsString(reports[0].get("layers")).contains("\"kept\""), reports[0].get("layers").toString());
        assertTrue(!reports[0].get("layers").equals(reports[1].get("layers")), "obs chooses other members than magnitude's");
        assertTrue(!reports[1].at("/compensation/output_errors_weighed").asBoolean(true), "magnitude computes no gradient");
    }

    /** Statistics scored with a gradient criterion carry output sensitivities, and obs weighs the errors by them. */
    @Test
    void obsWeighsOutputErrorsWhenTheStatisticsCarrySensitivities() throws Exception {
        Path entropyScores = tmp.resolve("entropy-obs.json");
        Path entropyStats = tmp.resolve("entropy-obs.safetensors");
        assertEquals(0, run("score", "--model", model.toString(), "--data", data.toString(), "--criterion", "entropy",
                "--seq-len", "32", "--max-windows", "2", "--out", entropyScores.toString(), "--stats", entropyStats.toString())
                .exitCode());
        Path out = tmp.resolve("obs-weighed");
        Result r = run("prune", "--model", model.toString(), "--scores", entropyScores.toString(), "--stats",
                entropyStats.toString(), "--compensate", "obs", "--mlp-ratio", "0.25", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("each output's error weighed by its sensitivity"), r.out());
        JsonNode report = new ObjectMapper().readTree(out.resolve("prune-report.json").toFile());
        assertTrue(report.at("/compensation/output_errors_weighed").asBoolean(false), report.toString());
    }

    /**
     * {@code score --dtype bf16}: the entropy scores within 2% of float32's per layer, and not equal to them; an unknown
     * type is one clear error.
     */
    @Test
    void scoresInBfloat16() throws Exception {
        String[] calibration = {"score", "--model", model.toString(), "--data", data.toString(), "--seq-len", "32",
                "--max-windows", "4", "--criterion", "entropy"};
        Path f32 = tmp.resolve("entropy-f32.json");
        Path bf16 = tmp.resolve("entropy-bf16.json");
        assertEquals(0, run(concat(calibration, new String[] {"--out", f32.toString()})).exitCode());
        Result r = run(concat(calibration, new String[] {"--dtype", "bf16", "--out", bf16.toString()}));
        assertEquals(0, r.exitCode(), r.err());
        Scores a = ScoresFile.read(f32).scores();
        Scores b = ScoresFile.read(bf16).scores();
        for (int l = 0; l < a.mlp().length; l++) {
            double error = 0;
            double norm = 0;
            for (int i = 0; i < a.mlp()[l].length; i++) {
                error += Math.abs(b.mlp()[l][i] - a.mlp()[l][i]);
                norm += Math.abs(a.mlp()[l][i]);
            }
            assertTrue(error / norm < 0.02 && error > 0, "layer " + l + ": L1 relative error " + error / norm);
        }
        String[] unwritten = {"--out", tmp.resolve("unwritten.json").toString()};
        assertOneError(run(concat(concat(calibration, unwritten), new String[] {"--dtype", "f16"})), "--dtype", "f16");
        assertFalse(Files.exists(tmp.resolve("unwritten.json")));
    }

    /**
     * Scoring on the fly gives exactly what scoring to a file and pruning from it gives: the same kept sets and, with the
     * statistics file, the same refit weights byte for byte.
     */
    @Test
    void scoresOnTheFlyLikeTheScoreCommand() throws Exception {
        String[] calibration = {"--data", data.toString(), "--criterion", "entropy", "--seq-len", "32",
                "--max-windows", "4", "--batch-windows", "2"};
        String[] pruning = {"--mlp-ratio", "0.3", "--attn-ratio", "0.25", "--allocation", "global", "--round-to", "4",
                "--skip-layers", "0,4"};
        Path scoresFile = tmp.resolve("entropy.json");
        Path statsFile = tmp.resolve("entropy.safetensors");
        assertEquals(0, run(concat(new String[] {"score", "--model", model.toString(), "--out", scoresFile.toString(),
                "--stats", statsFile.toString()}, calibration)).exitCode());

        Path fromFile = tmp.resolve("from-file");
        Path onTheFly = tmp.resolve("on-the-fly");
        Result a = run(concat(new String[] {"prune", "--model", model.toString(), "--scores", scoresFile.toString(),
                "--stats", statsFile.toString(), "--out", fromFile.toString()}, pruning));
        Result b = run(concat(concat(new String[] {"prune", "--model", model.toString(), "--out", onTheFly.toString()},
                calibration), pruning));
        assertEquals(0, a.exitCode(), a.err());
        assertEquals(0, b.exitCode(), b.err());
        assertTrue(b.out().contains("(skipped)") && b.out().contains("hfprune's loader"), b.out());

        ObjectMapper json = new ObjectMapper();
        JsonNode ra = json.readTree(fromFile.resolve("prune-report.json").toFile());
        JsonNode rb = json.readTree(onTheFly.resolve("prune-report.json").toFile());
        assertEquals(ra.get("layers"), rb.get("layers"), "same kept neurons and heads");
        assertEquals(ra.get("scores"), rb.get("scores"));
        assertEquals(ra.get("compensation"), rb.get("compensation"));
        assertTrue(Arrays.equals(Files.readAllBytes(fromFile.resolve("model.safetensors")),
                Files.readAllBytes(onTheFly.resolve("model.safetensors"))), "the same refit weights");
        assertEquals(4, rb.at("/scores/windows").asInt());
        assertEquals(128, rb.at("/scores/tokens").asInt());
        assertEquals(172, rb.at("/layers/0/mlp/after").asInt(), "layer 0 skipped");
        assertTrue(HfConfigs.readLayerWidths(onTheFly).isPresent(), "global allocation lists per-layer widths");
        for (JsonNode layer : rb.get("layers")) {
            assertEquals(0, layer.at("/mlp/after").asInt() % 4, "rounded to a multiple of 4: " + layer.at("/mlp/after"));
        }
    }

    @Test
    void badRatiosAreRefused() {
        assertRefused(List.of("--mlp-ratio", "1.0"), "--mlp-ratio must be in [0, 1)");
        assertRefused(List.of("--mlp-ratio", "-0.1"), "--mlp-ratio must be in [0, 1)");
        assertRefused(List.of("--mlp-ratio", "0.2", "--attn-ratio", "1"), "--attn-ratio must be in [0, 1)");
        assertRefused(List.of("--mlp-ratio", "0.2", "--attn-ratio", "0.3"),
                "--attn-ratio 0.3 does not remove a whole number of KV groups", "allowed ratios are 0, 0.25, 0.5, 0.75");
        assertRefused(List.of("--mlp-ratio", "0.2", "--allocation", "even"), "unknown allocation 'even'");
        assertRefused(List.of("--mlp-ratio", "0.2", "--max-shard-size", "lots"), "--max-shard-size: cannot read 'lots'");
        assertRefused(List.of("--mlp-ratio", "0.2", "--skip-layers", "1,9"), "--skip-layers: layer 9 does not exist");
        assertRefused(List.of("--mlp-ratio", "0.2", "--criterion", "entropy"), "--scores cannot be combined with --criterion");
        assertRefused(List.of("--mlp-ratio", "0.2", "--compensate", "magic"), "unknown compensation 'magic'", "obs");
        assertRefused(List.of("--mlp-ratio", "0.2", "--damping", "-1"), "--damping must be a finite number");
    }

    /** Recovery after the refit: the report records it, and the held-out KL never gets worse. */
    @Test
    void recoversBySelfDistillation() throws Exception {
        Path out = tmp.resolve("recovered");
        Result r = run("prune", "--model", model.toString(), "--data", data.toString(), "--criterion", "entropy",
                "--seq-len", "32", "--max-windows", "8", "--mlp-ratio", "0.3", "--recover-steps", "12",
                "--recover-windows", "8", "--recover-held-out", "4", "--lora-rank", "4", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("recovered: held-out KL") && r.out().contains("LoRA rank 4, merged"), r.out());
        JsonNode rec = new ObjectMapper().readTree(out.resolve("prune-report.json").toFile()).get("recovery");
        assertEquals(12, rec.get("steps").asInt());
        assertEquals(4, rec.get("lora_rank").asInt());
        assertEquals(8, rec.get("train_windows").asInt());
        assertTrue(rec.get("held_out_kl_after").asDouble() <= rec.get("held_out_kl_before").asDouble(), rec.toString());
        try (Checkpoint saved = Checkpoint.open(out)) {
            assertEquals(120, saved.config().intermediateSize(), "merged adapters leave the shapes standard");
        }

        assertOneError(run("prune", "--model", model.toString(), "--scores", scores.toString(), "--stats", stats.toString(),
                "--mlp-ratio", "0.2", "--recover-steps", "5", "--out", out.resolve("x").toString()),
                "--recover-steps with --scores needs --recover-data");
        assertRefused(List.of("--mlp-ratio", "0.2", "--recover-steps", "-1"), "--recover-steps must be 0");
        assertRefused(List.of("--mlp-ratio", "0.2", "--recover-steps", "5", "--lora-rank", "-2"), "--lora-rank must be 0");
        assertRefused(List.of("--mlp-ratio", "0.2", "--recover-steps", "5", "--recover-lr", "0"), "recovery: the learning rate");
    }

    @Test
    void theRefitNeedsTheStatisticsOfTheSameModel() {
        Path out = tmp.resolve("out");
        assertOneError(run("prune", "--model", model.toString(), "--scores", scores.toString(), "--mlp-ratio", "0.2",
                "--out", out.toString()), "--compensate lstsq needs the calibration statistics", "--stats", "--compensate none");
        assertOneError(run("prune", "--model", model.toString(), "--scores", scores.toString(), "--stats", stats.toString(),
                "--compensate", "none", "--mlp-ratio", "0.2", "--out", out.toString()), "--stats is only read by --compensate lstsq");
        assertOneError(run("prune", "--model", model.toString(), "--stats", stats.toString(), "--mlp-ratio", "0.2",
                "--out", out.toString()), "--stats goes with --scores");
        assertOneError(run("prune", "--model", model.toString(), "--scores", scores.toString(),
                "--stats", tmp.resolve("missing.safetensors").toString(), "--mlp-ratio", "0.2", "--out", out.toString()),
                "missing.safetensors does not exist");

        Path baby = Assets.resolve("models/babyllama-tok105/babyllama-tok105.gguf");
        Path babyStats = tmp.resolve("baby.safetensors");
        assertEquals(0, run("score", "--model", baby.toString(), "--data", data.toString(), "--criterion", "magnitude",
                "--seq-len", "16", "--max-windows", "1", "--out", tmp.resolve("baby.json").toString(),
                "--stats", babyStats.toString()).exitCode());
        assertOneError(run("prune", "--model", model.toString(), "--scores", scores.toString(), "--stats", babyStats.toString(),
                "--mlp-ratio", "0.2", "--out", out.toString()), "computed for another model", "babyllama-tok105");
        assertFalse(Files.exists(out));
    }

    @Test
    void aNonEmptyOutputDirectoryIsRefusedUnlessForced() throws Exception {
        Path out = tmp.resolve("out");
        Files.createDirectories(out);
        Files.writeString(out.resolve("notes.txt"), "mine");
        Result r = run("prune", "--model", model.toString(), "--scores", scores.toString(), "--compensate", "none",
                "--mlp-ratio", "0.2", "--out", out.toString());
        assertOneError(r, "exists and is not empty", "--force");
        assertTrue(Files.exists(out.resolve("notes.txt")));

        r = run("prune", "--model", model.toString(), "--scores", scores.toString(), "--compensate", "none",
                "--mlp-ratio", "0.2", "--force", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertFalse(Files.exists(out.resolve("notes.txt")));
    }

    @Test
    void scoresOfAnotherModelAreRefused() {
        Path baby = Assets.resolve("models/babyllama-tok105/babyllama-tok105.gguf");
        Path babyScores = tmp.resolve("baby.json");
        assertEquals(0, run("score", "--model", baby.toString(), "--data", data.toString(), "--criterion", "magnitude",
                "--seq-len", "16", "--max-windows", "1", "--out", babyScores.toString()).exitCode());
        Path out = tmp.resolve("out");
        Result r = run("prune", "--model", model.toString(), "--scores", babyScores.toString(), "--compensate", "none",
                "--mlp-ratio", "0.2", "--out", out.toString());
        assertOneError(r, "computed for another model", "babyllama-tok105", "stories260K");
        assertFalse(Files.exists(out));
    }

    @Test
    void scoresOfTheWrongShapeAreRefused() {
        String sha;
        try (Checkpoint c = Checkpoint.open(model)) {
            sha = c.sha256();
        }
        Path fourLayers = tmp.resolve("four.json");
        ScoresFile.write(fourLayers, "stories260K", sha, 32, scores(4, 172, 8));
        assertOneError(prune(fourLayers), "the scores cover 4 layers but the model has 5");
        Path narrow = tmp.resolve("narrow.json");
        ScoresFile.write(narrow, "stories260K", sha, 32, scores(5, 170, 8));
        assertOneError(prune(narrow), "layer 0", "170 MLP scores", "172 neurons");
        Path heads = tmp.resolve("heads.json");
        ScoresFile.write(heads, "stories260K", sha, 32, scores(5, 172, 4));
        assertOneError(prune(heads), "layer 0", "4 attention scores", "8 query heads");
    }

    // ---- helpers --------------------------------------------------------------------------------------------

    private Result prune(Path scoresFile) {
        return run("prune", "--model", model.toString(), "--scores", scoresFile.toString(), "--stats", stats.toString(),
                "--mlp-ratio", "0.2", "--out", tmp.resolve("out").toString());
    }

    private static Scores scores(int layers, int mlp, int heads) {
        double[][] m = new double[layers][mlp];
        double[][] h = new double[layers][heads];
        return new Scores(Criterion.MAGNITUDE, 1, 32, m, h);
    }

    private void assertRefused(List<String> options, String... fragments) {
        Path out = tmp.resolve("refused");
        List<String> args = new ArrayList<>(List.of("prune", "--model", model.toString(), "--scores", scores.toString(),
                "--stats", stats.toString(), "--out", out.toString()));
        args.addAll(options);
        assertOneError(run(args.toArray(String[]::new)), fragments);
        assertFalse(Files.exists(out), "nothing written for " + options);
    }

    /** Exit code 1 and a single "hfprune: error: ..." line naming the problem. */
    private static void assertOneError(Result r, String... fragments) {
        assertEquals(1, r.exitCode(), r.out() + r.err());
        String err = r.err().strip();
        assertTrue(err.startsWith("hfprune: error: ") && err.lines().count() == 1, err);
        for (String f : fragments) {
            assertTrue(err.contains(f), "message lacks \"" + f + "\": " + err);
        }
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static int[] concat(int first, int[] rest) {
        int[] out = new int[rest.length + 1];
        out[0] = first;
        System.arraycopy(rest, 0, out, 1, rest.length);
        return out;
    }
}
