package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.eval.Evaluator;
import ai.hfprune.engine.eval.Perplexity;
import ai.hfprune.engine.eval.WindowMetrics;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.io.AtomicFiles;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.ParameterCount;
import ai.hfprune.engine.prune.PruneOptions;
import ai.hfprune.engine.prune.PrunedModel;
import ai.hfprune.engine.prune.Pruner;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.math.BigDecimal;
import java.math.MathContext;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.function.ToDoubleFunction;

/**
 * The fidelity study: for every importance criterion, score the model once on calibration text (with the code of
 * {@code hfprune score}), prune it in memory at a fixed set of (MLP ratio, attention ratio) settings with uniform
 * allocation, and measure each pruned model against the dense one on held-out text (perplexity, KL(dense‖pruned) per
 * token, top-1 agreement). Nothing is written but the optional {@code --out} JSON; the tables go to standard output.
 */
@Command(name = "fidelity", mixinStandardHelpOptions = true,
        description = {"Fidelity study: every criterion (entropy, ce, activation, magnitude, random) scores the model once;"
                + " the model is pruned in memory at MLP 0.1, 0.2, 0.3, 0.5 and at MLP 0.2 + attention 0.25 (uniform"
                + " allocation) and compared with the dense model on held-out text: perplexity, KL(dense||pruned) per"
                + " token, top-1 agreement. Prints Markdown tables; nothing is written unless --out is given."})
public class FidelityStudyCommand implements Callable<Integer> {

    /** One pruning setting of the study. */
    record Setting(double mlpRatio, double attnRatio) {
        PruneOptions options() {
            return PruneOptions.uniform(mlpRatio, attnRatio);
        }
    }

    static final List<Setting> SETTINGS = List.of(new Setting(0.1, 0), new Setting(0.2, 0), new Setting(0.3, 0),
            new Setting(0.5, 0), new Setting(0.2, 0.25));

    /** What one criterion at one setting measured. */
    record Result(Criterion criterion, Setting setting, long parameters, Perplexity perplexity, double kl, double top1) {
    }

    @Mixin
    ModelOption model;

    @Option(names = "--data", paramLabel = "FILE",
            description = "Calibration text or windows, read as by 'hfprune score' (default: TinyStories train-head-2MiB.txt from the assets folder).")
    Path data;

    @Option(names = "--eval-data", paramLabel = "FILE",
            description = "Evaluation text or windows, read as by 'hfprune eval' (default: TinyStories valid-hf-head.txt from the assets folder).")
    Path evalData;

    @Option(names = "--windows", defaultValue = "64", description = "Calibration windows (default: ${DEFAULT-VALUE}).")
    int windows;

    @Option(names = "--seq-len", defaultValue = "128", description = "Tokens per window, T, for calibration and evaluation (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--batch-windows", defaultValue = "8", description = "Windows per forward pass (default: ${DEFAULT-VALUE}).")
    int batchWindows;

    @Option(names = "--eval-windows", defaultValue = "0", paramLabel = "N",
            description = "Evaluate on the first N non-overlapping windows of the evaluation file (default: all).")
    int evalWindows;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random criterion (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--out", paramLabel = "study.json", description = "Also write every number to this JSON file.")
    Path out;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        checkOptions();
        Path calibrationFile = data != null ? data : Assets.resolve(Assets.DEFAULT_CALIBRATION);
        Path evalFile = evalData != null ? evalData : Assets.resolve(Assets.DEFAULT_EVALUATION);
        List<Result> results = new ArrayList<>();
        Study study;
        try (Checkpoint checkpoint = model.open()) {
            int[][] evaluation = CalibrationData.readWindows(evalFile, checkpoint::tokenizer, checkpoint.config().vocabSize(),
                    seqLen, evalWindows);
            long evalTokens = (long) evaluation.length * seqLen;
            Scores first = null;
            Perplexity dense;
            try (LlamaModel denseModel = checkpoint.load()) {
                try (ProgressBar bar = Progress.bar("dense perplexity", evalTokens, "tok")) {
                    dense = Evaluator.evaluate(denseModel, null, evaluation, batchWindows, n -> bar.stepBy((long) n * seqLen))
                            .perplexity();
                }
                for (Criterion criterion : Criterion.values()) {
                    Scores scores = scoring(calibrationFile, criterion).score(checkpoint);
                    first = first == null ? scores : first;
                    try (ProgressBar bar = Progress.bar("prune+eval " + criterion.id(), SETTINGS.size() * evalTokens, "tok")) {
                        for (Setting setting : SETTINGS) {
                            bar.setExtraMessage(String.format(Locale.ROOT, " mlp %s attn %s", setting.mlpRatio(), setting.attnRatio()));
                            results.add(evaluate(checkpoint, denseModel, scores, setting, evaluation, bar));
                        }
                    }
                }
            }
            study = new Study(checkpoint.name(), checkpoint.sha256(), ParameterCount.of(checkpoint.weights()),
                    calibrationFile, first.windows(), evalFile, evaluation.length, dense, results);
        }
        PrintWriter stdout = spec.commandLine().getOut();
        stdout.print(study.markdown(seqLen));
        stdout.flush();
        if (out != null) {
            ObjectNode json = study.json(seqLen, seed);
            AtomicFiles.write(out, o -> new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(o, json));
        }
        return 0;
    }

    private void checkOptions() {
        if (windows < 1) {
            throw new HfpruneException("--windows must be at least 1, got " + windows);
        }
        if (evalWindows < 0) {
            throw new HfpruneException("--eval-windows must be 0 (all) or positive, got " + evalWindows);
        }
        if (batchWindows < 1) {
            throw new HfpruneException("--batch-windows must be at least 1, got " + batchWindows);
        }
        if (out != null && Files.isDirectory(out)) {
            throw new HfpruneException("--out " + out + " is a directory; give a file name such as study.json");
        }
        SETTINGS.forEach(Setting::options); // the ratios are valid
    }

    /** The options of {@code hfprune score} for one criterion, so that scoring is exactly that command's. */
    private ScoringOptions scoring(Path calibrationFile, Criterion criterion) {
        ScoringOptions s = new ScoringOptions();
        s.data = calibrationFile;
        s.criterion = criterion.id();
        s.seqLen = seqLen;
        s.maxWindows = windows;
        s.batchWindows = batchWindows;
        s.seed = seed;
        return s;
    }

    private Result evaluate(Checkpoint checkpoint, LlamaModel dense, Scores scores, Setting setting, int[][] evaluation,
                            ProgressBar bar) {
        PrunedModel pruned = Pruner.prune(checkpoint, scores, setting.options());
        try (LlamaModel model = LlamaModel.load(pruned.config(), pruned.weights(), dense.manager().getDevice(), dense.dataType())) {
            WindowMetrics m = Evaluator.evaluate(model, dense, evaluation, batchWindows, n -> bar.stepBy((long) n * seqLen));
            return new Result(scores.criterion(), setting, pruned.parameters(), m.perplexity(), m.fidelity().kl(),
                    m.fidelity().top1());
        }
    }

    /** Everything the study measured, and its two renderings. */
    record Study(String model, String sha256, long denseParameters, Path calibration, long calibrationWindows,
                 Path evaluation, int evaluationWindows, Perplexity dense, List<Result> results) {

        private record Metric(String title, ToDoubleFunction<Result> value, boolean higherIsBetter) {
        }

        private static final List<Metric> METRICS = List.of(
                new Metric("KL(dense‖pruned), nats per token — lower is better", Result::kl, false),
                new Metric("top-1 agreement with the dense model — higher is better", Result::top1, true),
                new Metric("perplexity — lower is better", r -> r.perplexity().perplexity(), false));

        Result result(Criterion c, Setting s) {
            return results.stream().filter(r -> r.criterion() == c && r.setting().equals(s)).findFirst().orElseThrow();
        }

        String markdown(int seqLen) {
            StringBuilder s = new StringBuilder();
            line(s, "Fidelity study: %s (%,d parameters), uniform allocation, pruned in memory.", model, denseParameters);
            line(s, "Calibration: %d windows × %d tokens = %,d tokens of %s.", calibrationWindows, seqLen,
                    calibrationWindows * seqLen, calibration.getFileName());
            line(s, "Evaluation: %d windows × %d tokens = %,d tokens of %s (%,d predicted tokens).", evaluationWindows, seqLen,
                    (long) evaluationWindows * seqLen, evaluation.getFileName(), dense.tokens());
            line(s, "Dense perplexity: %s. Best criterion per row in bold.", sig(dense.perplexity()));
            List<Criterion> criteria = Arrays.asList(Criterion.values());
            for (Metric metric : METRICS) {
                s.append('\n');
                line(s, "%s", metric.title());
                s.append('\n');
                StringBuilder header = new StringBuilder("| mlp | attn | params |");
                StringBuilder rule = new StringBuilder("|---:|---:|---:|");
                for (Criterion c : criteria) {
                    header.append(' ').append(c.id()).append(" |");
                    rule.append("---:|");
                }
                line(s, "%s", header);
                line(s, "%s", rule);
                for (Setting setting : SETTINGS) {
                    double[] v = criteria.stream().mapToDouble(c -> metric.value().applyAsDouble(result(c, setting))).toArray();
                    double best = metric.higherIsBetter() ? Arrays.stream(v).max().orElseThrow() : Arrays.stream(v).min().orElseThrow();
                    StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "| %s | %s | %,d |",
                            setting.mlpRatio(), setting.attnRatio(), result(criteria.get(0), setting).parameters()));
                    for (double x : v) {
                        row.append(' ').append(x == best ? "**" + sig(x) + "**" : sig(x)).append(" |");
                    }
                    line(s, "%s", row);
                }
            }
            return s.toString();
        }

        ObjectNode json(int seqLen, long seed) {
            ObjectNode root = new ObjectMapper().createObjectNode();
            root.put("format", "hfprune.fidelity-study/1");
            root.putObject("model").put("name", model).put("sha256", sha256).put("parameters", denseParameters);
            root.putObject("calibration").put("data", calibration.toString()).put("windows", calibrationWindows)
                    .put("seq_len", seqLen).put("tokens", calibrationWindows * seqLen).put("random_seed", seed);
            root.putObject("evaluation").put("data", evaluation.toString()).put("windows", evaluationWindows)
                    .put("seq_len", seqLen).put("tokens", (long) evaluationWindows * seqLen)
                    .put("predicted_tokens", dense.tokens());
            ObjectNode d = root.putObject("dense");
            number(d, "nll", dense.meanNll());
            number(d, "perplexity", dense.perplexity());
            root.put("allocation", "uniform");
            ArrayNode rows = root.putArray("results");
            for (Result r : results) {
                ObjectNode row = rows.addObject();
                row.put("criterion", r.criterion().id());
                row.put("mlp_ratio", r.setting().mlpRatio());
                row.put("attn_ratio", r.setting().attnRatio());
                row.put("parameters", r.parameters());
                number(row, "nll", r.perplexity().meanNll());
                number(row, "perplexity", r.perplexity().perplexity());
                number(row, "kl", r.kl());
                number(row, "top1", r.top1());
            }
            return root;
        }

        /** Four significant digits, never in scientific notation. */
        static String sig(double x) {
            if (!Double.isFinite(x)) {
                return String.valueOf(x);
            }
            return new BigDecimal(x).round(new MathContext(4)).toPlainString();
        }

        private static void number(ObjectNode node, String key, double value) {
            if (Double.isFinite(value)) {
                node.put(key, value);
            } else {
                node.putNull(key);
            }
        }

        private static void line(StringBuilder s, String format, Object... args) {
            s.append(String.format(Locale.ROOT, format, args)).append('\n');
        }
    }
}
