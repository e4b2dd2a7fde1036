package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.compensate.Compensation;
import ai.hfprune.engine.compensate.GramFile;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.compensate.Refit;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.importance.ScoresFile;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.prune.Allocation;
import ai.hfprune.engine.prune.ExportFormat;
import ai.hfprune.engine.prune.GgufExport;
import ai.hfprune.engine.prune.HfExport;
import ai.hfprune.engine.prune.LayerPlan;
import ai.hfprune.engine.prune.ModelExport;
import ai.hfprune.engine.prune.ParameterCount;
import ai.hfprune.engine.prune.PruneOptions;
import ai.hfprune.engine.prune.PruneReport;
import ai.hfprune.engine.prune.PrunedModel;
import ai.hfprune.engine.prune.Pruner;
import ai.hfprune.engine.recover.RecoveryResult;
import ai.hfprune.engine.prune.ScoresCheck;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "prune", mixinStandardHelpOptions = true,
        description = {"Remove the least important MLP neurons and attention KV groups and save the smaller model in"
                + " Hugging Face format (model.safetensors, config.json, tokenizer.json, prune-report.json and its page report.html), as GGUF for"
                + " llama.cpp (model.gguf), or both.",
                "Scores come from --scores (written by hfprune score) or are computed here from --data/--criterion."})
public class PruneCommand implements Callable<Integer> {

    @Mixin
    ModelOption model;

    @Option(names = "--scores", paramLabel = "scores.json",
            description = "Scores written by 'hfprune score' for this model (instead of --data/--criterion/...).")
    Path scoresFile;

    @Mixin
    ScoringOptions scoring;

    @Option(names = "--mlp-ratio", required = true, paramLabel = "R", description = "Fraction of MLP neurons removed, in [0, 1).")
    double mlpRatio;

    @Option(names = "--attn-ratio", defaultValue = "0", paramLabel = "R",
            description = "Fraction of attention removed in whole KV groups, in [0, 1) (default: ${DEFAULT-VALUE}).")
    double attnRatio;

    @Option(names = "--allocation", defaultValue = "uniform",
            description = "uniform: the same width in every layer (standard config.json); global: one ranking across"
                    + " layers, per-layer widths in config.json, which standard transformers cannot load (default: ${DEFAULT-VALUE}).")
    String allocation;

    @Option(names = "--min-keep", defaultValue = "0.1", paramLabel = "F",
            description = "Global allocation: each layer keeps at least this fraction of its width (default: ${DEFAULT-VALUE}).")
    double minKeep;

    @Option(names = "--round-to", defaultValue = "1", paramLabel = "K",
            description = "Round kept MLP widths to a multiple of K (default: ${DEFAULT-VALUE}).")
    int roundTo;

    @Option(names = "--skip-layers", split = ",", paramLabel = "L", description = "Layers left untouched, e.g. 0,4.")
    List<Integer> skipLayers = List.of();

    @Option(names = "--compensate", defaultValue = "lstsq", paramLabel = "none|lstsq|obs",
            description = "After the cut, refit the kept columns of down_proj and o_proj by least squares on the calibration"
                    + " activations (lstsq); or keep each layer's count but choose its members by the refit's error, then"
                    + " refit (obs); or leave the kept weights as they are (none) (default: ${DEFAULT-VALUE}).")
    String compensate;

    @Option(names = "--stats", paramLabel = "FILE",
            description = "With --scores and --compensate lstsq: the calibration statistics written by 'hfprune score --stats'.")
    Path statsFile;

    @Option(names = "--damping", defaultValue = "" + Compensation.DEFAULT_DAMPING, paramLabel = "λ",
            description = "Damping of the refit, relative to the mean kept Gram diagonal (default: ${DEFAULT-VALUE}).")
    double damping;

    @Mixin
    RecoveryOption recovery;

    @Option(names = "--max-shard-size", defaultValue = "2GB", paramLabel = "SIZE",
            description = "Split model.safetensors into shards above this size (default: ${DEFAULT-VALUE}).")
    String maxShardSize;

    @Option(names = "--format", defaultValue = "hf", paramLabel = "hf|gguf|both",
            description = "hf: a Hugging Face directory; gguf: model.gguf for llama.cpp (architecture llama, or deci for"
                    + " per-layer widths); both: side by side in --out (default: ${DEFAULT-VALUE}).")
    String format;

    @Option(names = "--gguf-type", defaultValue = "f32", paramLabel = "f32|f16|q8_0",
            description = "Tensor type of model.gguf's matrices; norms stay f32 (default: ${DEFAULT-VALUE}).")
    String ggufType;

    @Option(names = "--force", description = "Replace --out if it exists and is not empty.")
    boolean force;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Directory to write the pruned model to.")
    Path out;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        // Everything that can be refused without the model is refused first.
        PruneOptions options = new PruneOptions(mlpRatio, attnRatio, Allocation.parse(allocation), minKeep, roundTo,
                new HashSet<>(skipLayers));
        ModelExport.Options export = new ModelExport.Options(ExportFormat.parse(format), ExportFormat.parseGgufType(ggufType),
                ByteSizes.parse("--max-shard-size", maxShardSize), force);
        Compensation compensation = Compensation.parse(compensate);
        Compensation.checkDamping(damping);
        recovery.check();
        checkScoreSource(compensation);
        if (recovery.enabled() && scoresFile != null && recovery.data == null) {
            throw new HfpruneException("--recover-steps with --scores needs --recover-data FILE: the scores file"
                    + " does not say which text it was computed from");
        }
        HfExport.checkOutput(model.path(), out, force);

        try (Checkpoint checkpoint = model.open()) {
            ModelExport.checkBefore(model.path(), checkpoint, out, export);
            Scores scores;
            GramStats stats = null;
            int seqLen;
            if (scoresFile != null) {
                ScoresFile.Contents contents = ScoresFile.read(scoresFile);
                ScoresCheck.requireSameModel(contents.modelName(), contents.modelSha256(), checkpoint.name(), checkpoint.sha256());
                scores = contents.scores();
                seqLen = contents.seqLen();
                if (compensation.usesStats()) {
                    GramFile.Contents gram = GramFile.read(statsFile);
                    ScoresCheck.requireSameModel(gram.modelName(), gram.modelSha256(), checkpoint.name(), checkpoint.sha256());
                    stats = gram.stats();
                }
            } else {
                ScoringOptions.Calibration calibration = scoring.calibrate(checkpoint, compensation.usesStats());
                scores = calibration.scores();
                stats = calibration.stats();
                seqLen = scoring.seqLen();
            }
            PrunedModel pruned = Pruner.prune(checkpoint, scores, options);
            if (export.format().writesGguf()) {
                GgufExport.check(pruned.widths()); // before the refit and recovery, which do not change widths
            }
            pruned = compensation.apply(checkpoint.config(), checkpoint.weights(), pruned, stats, damping);
            RecoveryOption.Done recovered = null;
            if (recovery.enabled()) {
                Path calibration = scoresFile == null ? scoring.check() : null;
                recovered = recovery.run(checkpoint, pruned, calibration, seqLen);
                pruned = new PrunedModel(pruned.config(), recovered.result().weights(), pruned.plan());
            }
            PruneReport report = PruneReport.of(checkpoint, scores, seqLen, pruned);
            report.setCompensation(compensation, damping, stats);
            if (recovered != null) {
                report.setRecovery(recovered.result(), recovered.options(), recovered.trainWindows(), recovered.heldOutWindows());
            }
            int formats = export.format() == ExportFormat.BOTH ? 2 : 1;
            try (ProgressBar bar = Progress.bar("save", formats * pruned.parameters(), "param")) {
                ModelExport.save(checkpoint, pruned, report, out, export, bar::stepBy);
            }
            printSummary(checkpoint, scores, pruned, compensation, stats != null && stats.hasSensitivity(), recovered, export);
        }
        return 0;
    }

    /** --scores replaces the calibration options; giving both is a mistake worth naming. */
    private void checkScoreSource(Compensation compensation) {
        if (scoresFile == null) {
            if (statsFile != null) {
                throw new HfpruneException("--stats goes with --scores: without --scores the statistics are computed here,"
                        + " in the same pass as the scores");
            }
            scoring.check();
            return;
        }

        List<String> given = ScoringOptions.NAMES.stream()
                .filter(name -> spec.commandLine().getParseResult().hasMatchedOption(name))
                .toList();
        if (!given.isEmpty()) {
            throw new HfpruneException("--scores cannot be combined with " + String.join(", ", given)
                    + ": the scores file already fixes the calibration");
        }
        if (compensation.usesStats() && statsFile == null) {
            throw new HfpruneException("--compensate " + compensation.id() + " needs the calibration statistics of the scores: give --stats FILE"
                    + " (written by 'hfprune score --stats FILE'), or --compensate none");
        }
        if (compensation == Compensation.NONE && statsFile != null) {
            throw new HfpruneException("--stats is only read by --compensate lstsq or obs");
        }
    }

    private void printSummary(Checkpoint checkpoint, Scores scores, PrunedModel pruned, Compensation compensation, boolean weighed,
                              RecoveryOption.Done recovered, ModelExport.Options export) {
        PrintWriter w = spec.commandLine().getOut();
        long before = ParameterCount.of(checkpoint.weights());
        long after = pruned.parameters();
        w.printf("pruned %s with %s scores (%d window%s, %d tokens): %,d -> %,d parameters (%.1f%% removed)%n",
                checkpoint.name(), scores.criterion().id(), scores.windows(), scores.windows() == 1 ? "" : "s",
                scores.tokens(), before, after, 100.0 * (before - after) / before);
        w.printf("%-6s %-12s %-10s %s%n", "layer", "mlp", "heads", "kv heads");
        for (LayerPlan p : pruned.plan().layers()) {
            w.printf("%-6d %-12s %-10s %s%s%n", p.layer(),
                    p.originalMlp() + " -> " + p.keptMlp().length,
                    p.originalHeads() + " -> " + p.keptHeads().length,
                    p.originalKvGroups() + " -> " + p.keptKvGroups().length,
                    pruned.plan().options().skips(p.layer()) ? "  (skipped)" : "");
        }
        if (compensation == Compensation.LSTSQ) {
            w.printf("compensated: down_proj and o_proj of pruned layers refit by least squares (damping %s)%n", damping);
        } else if (compensation == Compensation.OBS) {
            w.printf("compensated: the cut chosen by the refit's error (greedy OBS%s), then down_proj and o_proj refit by"
                    + " least squares (damping %s)%n", weighed ? ", each output's error weighed by its sensitivity"
                    : ", output errors unweighted: the statistics carry no sensitivities", damping);
        }
        if (recovered != null) {
            RecoveryResult r = recovered.result();
            w.printf("recovered: held-out KL %.4f -> %.4f nats/token (%d windows; best at step %d of %d run, lr %s, %s; peak RSS %s)%n",
                    r.heldOutKlBefore(), r.heldOutKlAfter(), recovered.heldOutWindows(), r.bestStep(), r.stepsRun(),
                    r.learningRate() == recovered.options().learningRate() ? String.format(java.util.Locale.ROOT, "%.0e", r.learningRate())
                            : String.format(java.util.Locale.ROOT, "%.0e backed off from %.0e", r.learningRate(), recovered.options().learningRate()),
                    recovered.options().loraRank() == 0 ? "all weights" : "LoRA rank " + recovered.options().loraRank() + ", merged",
                    r.peakRssBytes() < 0 ? "n/a" : String.format(java.util.Locale.ROOT, "%.0f MiB", r.peakRssBytes() / 1048576.0));
        }
        boolean uniform = pruned.widths().isUniform();
        String hf = "Hugging Face format" + (uniform ? "" : "; per-layer widths in config.json need hfprune's loader");
        String gguf = GgufExport.FILE + " for llama.cpp (" + export.ggufType() + ", architecture " + (uniform ? "llama" : "deci") + ")";
        w.printf("saved to %s (%s)%n", out, switch (export.format()) {
            case HF -> hf;
            case GGUF -> gguf;
            case BOTH -> hf + "; and " + gguf;
        });
    }
}
