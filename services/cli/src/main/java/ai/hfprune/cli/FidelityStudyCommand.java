package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.MallocTuning;
import ai.hfprune.engine.MklOverride;
import ai.hfprune.engine.compensate.Compensation;
import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.compensate.Refit;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.eval.Evaluator;
import ai.hfprune.engine.eval.Perplexity;
import ai.hfprune.engine.eval.WindowMetrics;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Finalizer;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.io.AtomicFiles;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.ParameterCount;
import ai.hfprune.engine.prune.PruneOptions;
import ai.hfprune.engine.prune.PrunedModel;
import ai.hfprune.engine.prune.Pruner;
import ai.hfprune.engine.recover.Recovery;
import ai.hfprune.engine.recover.RecoveryListener;
import ai.hfprune.engine.recover.RecoveryOptions;
import ai.hfprune.engine.recover.RecoveryResult;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashSet;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * The fidelity study: on each of several disjoint calibration sets, every criterion scores the model (one forward
 * pass per batch for all criteria, which also gives the Gram statistics); the model is then pruned in memory at each
 * setting (uniform allocation) and, for each method (the cut alone, + least-squares refit, + recovery), compared with
 * the dense model on the same held-out windows: perplexity, KL(dense‖pruned) per token, top-1 agreement.
 */
@Command(name = "fidelity", mixinStandardHelpOptions = true,
        description = {"Fidelity study: on --calibration-sets disjoint calibration sets, every criterion scores the model;"
                + " the model is pruned in memory at each setting (uniform allocation) and, after each method (mask: the"
                + " cut alone; lstsq: + least-squares refit; recover: + refit + self-distillation), compared with the dense"
                + " model on the same held-out text: perplexity, KL(dense||pruned) per token, top-1 agreement. Prints"
                + " Markdown tables of mean ± standard deviation over the sets; nothing is written unless --out (with its HTML page of"
                + " curves beside it) or --report is given."})
public class FidelityStudyCommand implements Callable<Integer> {

    /** One pruning setting of the study. */
    record Setting(double mlpRatio, double attnRatio) {
        PruneOptions options() {
            return PruneOptions.uniform(mlpRatio, attnRatio);
        }

        static Setting parse(String s) {
            String[] parts = s.split(":");
            try {
                return new Setting(Double.parseDouble(parts[0]), parts.length > 1 ? Double.parseDouble(parts[1]) : 0);
            } catch (NumberFormatException e) {
                throw new HfpruneException("--settings: '" + s + "' is not MLP[:ATTN] ratios such as 0.2 or 0.2:0.25");
            }
        }
    }

    static final List<Setting> SETTINGS = List.of(new Setting(0.1, 0), new Setting(0.2, 0), new Setting(0.3, 0),
            new Setting(0.5, 0), new Setting(0.2, 0.25));

    @Mixin
    ModelOption model;

    @Option(names = "--data", paramLabel = "FILE",
            description = "Calibration text or windows, read as by 'hfprune score' (default: TinyStories train-head-2MiB.txt from the assets folder).")
    Path data;

    @Option(names = "--eval-data", paramLabel = "FILE",
            description = "Evaluation text or windows, read as by 'hfprune eval' (default: TinyStories valid-hf-head.txt from the assets folder).")
    Path evalData;

    @Option(names = "--windows", defaultValue = "512", description = "Calibration windows per set (default: ${DEFAULT-VALUE}).")
    int windows;

    @Option(names = "--calibration-sets", defaultValue = "3", paramLabel = "N",
            description = "Disjoint calibration sets: set s is windows s·W … (s+1)·W − 1 of the calibration file (default: ${DEFAULT-VALUE}).")
    int calibrationSets;

    @Option(names = "--criteria", split = ",", defaultValue = "entropy,ce,activation,magnitude,random",
            description = "Criteria to compare (default: ${DEFAULT-VALUE}).")
    List<String> criteria;

    @Option(names = "--settings", split = ",", defaultValue = "0.1,0.2,0.3,0.5,0.2:0.25", paramLabel = "MLP[:ATTN]",
            description = "Pruning settings, MLP ratio and optional attention ratio (default: ${DEFAULT-VALUE}).")
    List<String> settings;

    @Option(names = "--methods", split = ",", defaultValue = "mask,lstsq",
            description = "mask (the cut alone), lstsq (+ least-squares refit), obs (the criterion's counts, members chosen"
                    + " by the refit's error, + refit), recover (+ refit + self-distillation), obs_recover (obs + self-distillation)"
                    + " (default: ${DEFAULT-VALUE}).")
    List<String> methods;

    @Option(names = "--damping", defaultValue = "" + Compensation.DEFAULT_DAMPING, paramLabel = "λ", description = "Damping of the refit (default: ${DEFAULT-VALUE}).")
    double damping;

    @Option(names = "--recover-steps", defaultValue = "500", paramLabel = "N",
            description = "Method recover: Adam steps of self-distillation after the refit (default: ${DEFAULT-VALUE}).")
    int recoverSteps;

    @Option(names = "--recover-lr", defaultValue = "1e-3", paramLabel = "LR",
            description = "Method recover: peak learning rate (default: ${DEFAULT-VALUE}).")
    double recoverLr;

    @Option(names = "--recover-held-out", defaultValue = "32", paramLabel = "N",
            description = "Method recover: the last N windows of each calibration set stop training early; it trains on"
                    + " the others (default: ${DEFAULT-VALUE}).")
    int recoverHeldOut;

    @Option(names = "--seq-len", defaultValue = "128", description = "Tokens per window, T, for calibration and evaluation (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--batch-windows", defaultValue = "8", description = "Windows per forward pass (default: ${DEFAULT-VALUE}).")
    int batchWindows;

    @Option(names = "--eval-windows", defaultValue = "512", paramLabel = "N",
            description = "Evaluate on the first N non-overlapping windows of the evaluation file (0: all; default: ${DEFAULT-VALUE}).")
    int evalWindows;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random criterion (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--out", paramLabel = "study.json", description = "Also write every number to this JSON file.")
    Path out;

    @Option(names = "--report", paramLabel = "FILE.html",
            description = "Also draw the curves (KL and perplexity against the parameters removed) into this HTML page"
                    + " (default with --out: beside it, study.json -> study.html).")
    Path report;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        List<Criterion> studied = distinct(criteria, Criterion::parse);
        List<Setting> studiedSettings = distinct(settings, Setting::parse);
        List<FidelityStudy.Method> studiedMethods = distinct(methods, FidelityStudy.Method::parse);
        checkOptions(studiedSettings, studiedMethods);
        Path calibrationFile = data != null ? data : Assets.resolve(Assets.DEFAULT_CALIBRATION);
        Path evalFile = evalData != null ? evalData : Assets.resolve(Assets.DEFAULT_EVALUATION);
        List<FidelityStudy.Result> results = new ArrayList<>();
        FidelityStudy study;
        try (Checkpoint checkpoint = model.open(); LlamaModel dense = checkpoint.load()) {
            int vocab = checkpoint.config().vocabSize();
            int[][] evaluation = CalibrationData.readWindows(evalFile, checkpoint::tokenizer, vocab, seqLen, evalWindows);
            int[][] all = CalibrationData.readWindows(calibrationFile, checkpoint::tokenizer, vocab, seqLen, windows * calibrationSets);
            if (all.length < windows * calibrationSets) {
                throw new HfpruneException(calibrationFile + " has " + all.length + " windows of " + seqLen + " tokens, fewer than "
                        + calibrationSets + " sets of " + windows);
            }
            Perplexity densePerplexity = Evaluator.perplexity(dense, evaluation, batchWindows);
            long evalTokens = (long) evaluation.length * seqLen;
            long evaluations = (long) calibrationSets * studied.size() * studiedSettings.size() * studiedMethods.size();
            try (ProgressBar bar = Progress.bar("fidelity", evaluations * evalTokens, "tok")) {
                for (int set = 0; set < calibrationSets; set++) {
                    int[][] calibration = Arrays.copyOfRange(all, set * windows, (set + 1) * windows);
                    bar.setExtraMessage(String.format(Locale.ROOT, " set %d: scoring", set));
                    Calibrated c = calibrate(dense, calibration, studied);
                    // obs takes only the counts from a criterion's plan: criteria with the same counts share its models
                    Map<String, PrunedModel> obsModels = new HashMap<>();
                    Map<String, WindowMetrics> measuredObs = new HashMap<>();
                    for (Criterion criterion : studied) {
                        for (Setting setting : studiedSettings) {
                            bar.setExtraMessage(String.format(Locale.ROOT, " set %d %s mlp %s attn %s", set, criterion.id(),
                                    setting.mlpRatio(), setting.attnRatio()));
                            PrunedModel cut = Pruner.prune(checkpoint, c.scores().get(criterion), setting.options());
                            PrunedModel refit = null;
                            PrunedModel obs = null;
                            for (FidelityStudy.Method method : studiedMethods) {
                                PrunedModel measured = switch (method) {
                                    case MASK -> cut;
                                    case LSTSQ -> refit = Refit.apply(checkpoint.weights(), cut, c.stats(), damping);
                                    case OBS -> obs = obsModels.computeIfAbsent(obsKey(setting, cut, method), k -> Compensation.OBS
                                            .apply(checkpoint.config(), checkpoint.weights(), cut, c.stats(), damping));
                                    case OBS_RECOVER -> {
                                        PrunedModel start = obs != null ? obs : obsModels.computeIfAbsent(
                                                obsKey(setting, cut, FidelityStudy.Method.OBS), k -> Compensation.OBS.apply(
                                                        checkpoint.config(), checkpoint.weights(), cut, c.stats(), damping));
                                        yield obsModels.computeIfAbsent(obsKey(setting, cut, method),
                                                k -> recover(dense, start, calibration));
                                    }
                                    case RECOVER -> recover(dense, refit != null ? refit
                                            : Refit.apply(checkpoint.weights(), cut, c.stats(), damping), calibration);
                                };
                                boolean shared = method == FidelityStudy.Method.OBS || method == FidelityStudy.Method.OBS_RECOVER;
                                String key = obsKey(setting, cut, method);
                                WindowMetrics m = shared && measuredObs.containsKey(key) ? skip(measuredObs.get(key), bar, evalTokens)
                                        : evaluate(measured, dense, evaluation, bar);
                                if (shared) {
                                    measuredObs.put(key, m);
                                }
                                results.add(new FidelityStudy.Result(criterion, setting, method, set, measured.parameters(),
                                        m.perplexity(), m.fidelity().kl(), m.fidelity().top1()));
                            }
                        }
                    }
                }
            }
            study = new FidelityStudy(checkpoint.name(), checkpoint.sha256(), ParameterCount.of(checkpoint.weights()),
                    calibrationFile, calibrationSets, windows, seqLen, evalFile, evaluation.length, densePerplexity,
                    studied, studiedSettings, studiedMethods, results);
        }
        PrintWriter stdout = spec.commandLine().getOut();
        stdout.println(MklOverride.describe());
        stdout.println(MallocTuning.describe());
        stdout.print(study.markdown());
        stdout.flush();
        ObjectNode json = study.json(seed);
        if (out != null) {
            AtomicFiles.write(out, o -> new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(o, json));
        }
        if (reportFile() != null) {
            FidelityReportPage.write(reportFile(), json);
        }
        return 0;
    }

    /** --report, or beside --out; null without either. */
    private Path reportFile() {
        return report != null ? report : out != null ? FidelityReportPage.besides(out) : null;
    }

    private void checkOptions(List<Setting> studiedSettings, List<FidelityStudy.Method> studiedMethods) {
        if (windows < 1) {
            throw new HfpruneException("--windows must be at least 1, got " + windows);
        }
        if (calibrationSets < 1) {
            throw new HfpruneException("--calibration-sets must be at least 1, got " + calibrationSets);
        }
        if (evalWindows < 0) {
            throw new HfpruneException("--eval-windows must be 0 (all) or positive, got " + evalWindows);
        }
        if (batchWindows < 1) {
            throw new HfpruneException("--batch-windows must be at least 1, got " + batchWindows);
        }
        Compensation.checkDamping(damping);
        if (out != null && Files.isDirectory(out)) {
            throw new HfpruneException("--out " + out + " is a directory; give a file name such as study.json");
        }
        if (reportFile() != null && Files.isDirectory(reportFile())) {
            throw new HfpruneException("--report " + reportFile() + " is a directory; give a file name such as study.html");
        }
        studiedSettings.forEach(Setting::options); // the ratios are valid
        if (studiedMethods.isEmpty()) {
            throw new HfpruneException("--methods: name at least one of mask, lstsq, obs, recover, obs_recover");
        }
    }

    /** The finalized scores of every studied criterion and the Gram statistics, from one pass over the calibration set. */
    private record Calibrated(Map<Criterion, Scores> scores, GramStats stats) {
    }

    private Calibrated calibrate(LlamaModel dense, int[][] calibration, List<Criterion> studied) {
        ImportanceScorer scorer = new ImportanceScorer(dense);
        Map<Criterion, Partial> totals = new EnumMap<>(Criterion.class);
        studied.forEach(c -> totals.put(c, scorer.zero(c)));
        try (GramAccumulator stats = new GramAccumulator(dense.manager(), dense.layers().size())) {
            for (int[][] batch : CalibrationData.batches(calibration, batchWindows)) {
                scorer.score(batch, totals.keySet(), stats).forEach((c, p) -> totals.put(c, totals.get(c).plus(p)));
            }
            Map<Criterion, Scores> scores = new EnumMap<>(Criterion.class);
            totals.forEach((c, p) -> scores.put(c, Finalizer.finalize(p, dense, seed)));
            return new Calibrated(scores, stats.drain());
        }
    }

    /** Self-distillation on the calibration set, its last windows held out for early stopping. */
    private PrunedModel recover(LlamaModel dense, PrunedModel refit, int[][] calibration) {
        int heldOut = Math.min(recoverHeldOut, calibration.length - 1);
        if (heldOut < 1) {
            throw new HfpruneException("method recover needs at least 2 calibration windows per set");
        }
        int[][] train = Arrays.copyOfRange(calibration, 0, calibration.length - heldOut);
        int[][] held = Arrays.copyOfRange(calibration, calibration.length - heldOut, calibration.length);
        RecoveryOptions options = RecoveryOptions.defaults(recoverSteps).withLearningRate(recoverLr);
        RecoveryResult r = Recovery.run(dense, refit.config(), refit.weights(), train, held, options, RecoveryListener.NONE);
        return new PrunedModel(refit.config(), r.weights(), refit.plan());
    }

    private static String obsKey(Setting setting, PrunedModel cut, FidelityStudy.Method method) {
        return method + "|" + setting + "|" + cut.plan().prunedWidths();
    }

    /** A measurement already made (the same model): the progress bar moves as if it were made again. */
    private static WindowMetrics skip(WindowMetrics m, ProgressBar bar, long evalTokens) {
        bar.stepBy(evalTokens);
        return m;
    }

    private WindowMetrics evaluate(PrunedModel pruned, LlamaModel dense, int[][] evaluation, ProgressBar bar) {
        try (LlamaModel m = LlamaModel.load(pruned.config(), pruned.weights(), dense.manager().getDevice(), dense.dataType())) {
            return Evaluator.evaluate(m, dense, evaluation, batchWindows, n -> bar.stepBy((long) n * seqLen));
        }
    }

    private static <T> List<T> distinct(List<String> values, java.util.function.Function<String, T> parse) {
        return List.copyOf(new LinkedHashSet<>(values.stream().map(parse).toList()));
    }
}
