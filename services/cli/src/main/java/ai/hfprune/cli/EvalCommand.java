package ai.hfprune.cli;

import ai.hfprune.engine.io.AtomicFiles;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.eval.EvalFile;
import ai.hfprune.engine.eval.EvalReport;
import ai.hfprune.engine.eval.EvalReport.ModelId;
import ai.hfprune.engine.eval.EvalTable;
import ai.hfprune.engine.eval.Evaluator;
import ai.hfprune.engine.eval.TaskCatalog;
import ai.hfprune.engine.eval.TaskFiles;
import ai.hfprune.engine.eval.TaskResult;
import ai.hfprune.engine.eval.WindowMetrics;
import ai.hfprune.engine.eval.ZeroShotEvaluator;
import ai.hfprune.engine.eval.ZeroShotTask;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.tokenizer.Tokenizer;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Perplexity on text, fidelity to a reference model (KL, top-1 agreement) and zero-shot "
                + "multiple-choice accuracy (lm-evaluation-harness scoring); writes eval.json and prints a table.")
public class EvalCommand implements Callable<Integer> {

    /** The zero-shot task files of the assets (relative to the assets folder). */
    static final String ZEROSHOT_TASKS = "data/zeroshot";

    @Mixin
    ModelOption model;

    @Option(names = "--reference", paramLabel = "DENSE",
            description = "Reference model (GGUF or Hugging Face directory) with the same vocabulary: report "
                    + "KL(reference || model) per token and top-1 agreement on the perplexity windows.")
    Path reference;

    @Option(names = "--data", paramLabel = "FILE",
            description = ".txt (documents split at <|endoftext|> lines, encoded as for score) or .json (windows of token ids); "
                    + "default: TinyStories valid-hf-head.txt from the assets folder")
    Path data;

    @Option(names = "--seq-len", defaultValue = "128", description = "Tokens per window, T (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--max-windows", defaultValue = "0", description = "Use at most N windows (default: all).")
    int maxWindows;

    @Option(names = "--batch-windows", defaultValue = "8",
            description = "Windows per forward pass; zero-shot batches hold as many padded tokens (default: ${DEFAULT-VALUE}).")
    int batchWindows;

    @Option(names = "--tasks", paramLabel = "DIR|LIST",
            description = "Zero-shot tasks: a comma-separated list of task names (boolq, piqa, arc_easy, arc_challenge, "
                    + "openbook_qa, winogrande, hellaswag) or task files, a folder of task files, or 'all' "
                    + "(every task in the assets folder). Default: no zero-shot tasks.")
    String tasks;

    @Option(names = "--limit", paramLabel = "N", description = "Evaluate only the first N items of each task (default: all).")
    Integer limit;

    @Option(names = "--out", required = true, paramLabel = "eval.json", description = "Where to write the results.")
    Path out;

    @Option(names = "--force", description = "Replace --out if it exists.")
    boolean force;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        checkOptions();
        AtomicFiles.requireWritable(out, force); // an earlier evaluation is not replaced by mistake, as score and prune
        // read every task first: a malformed task file fails before minutes of perplexity
        List<ZeroShotTask> zeroShot = readTasks();
        Path dataFile = data != null ? data : Assets.resolve(Assets.DEFAULT_EVALUATION);
        EvalReport report;
        try (Checkpoint checkpoint = model.open();
             Checkpoint dense = reference == null ? null : Checkpoint.open(reference)) {
            if (dense != null) {
                requireSameVocabulary(checkpoint, dense);
            }
            report = evaluate(checkpoint, dense, dataFile, zeroShot);
        }
        EvalFile.write(out, report);
        PrintWriter stdout = spec.commandLine().getOut();
        stdout.print(EvalTable.render(report));
        stdout.printf("written to %s%n", out);
        stdout.flush();
        return 0;
    }

    private EvalReport evaluate(Checkpoint checkpoint, Checkpoint dense, Path dataFile, List<ZeroShotTask> zeroShot) {
        Tokenizer tokenizer = zeroShot.isEmpty() ? null : checkpoint.tokenizer(); // fail now if there is none
        int[][] windows = CalibrationData.readWindows(dataFile, checkpoint::tokenizer,
                checkpoint.config().vocabSize(), seqLen, maxWindows);
        WindowMetrics metrics;
        List<TaskResult> results = new ArrayList<>();
        try (LlamaModel llama = checkpoint.load(); LlamaModel denseModel = dense == null ? null : dense.load()) {
            String label = dense == null ? "perplexity" : "perplexity+KL";
            try (ProgressBar bar = Progress.bar(label, (long) windows.length * seqLen, "tok")) {
                metrics = Evaluator.evaluate(llama, denseModel, windows, batchWindows, n -> bar.stepBy((long) n * seqLen));
            }
            if (!zeroShot.isEmpty()) {
                // zero-shot batches get the memory budget of a perplexity batch
                ZeroShotEvaluator evaluator = new ZeroShotEvaluator(llama, tokenizer, batchWindows * seqLen);
                for (ZeroShotTask task : zeroShot) {
                    try (ProgressBar bar = Progress.bar(task.name(), ZeroShotEvaluator.choiceCount(task), "seq")) {
                        results.add(evaluator.evaluate(task, bar::stepBy));
                    }
                }
            }
        }
        return new EvalReport(id(checkpoint), dense == null ? null : id(dense), dataFile.toString(), seqLen,
                windows.length, metrics.perplexity(), metrics.fidelity(), results);
    }

    private void checkOptions() {
        if (limit != null && limit < 1) {
            throw new HfpruneException("--limit must be at least 1, got " + limit);
        }
        if (maxWindows < 0) {
            throw new HfpruneException("--max-windows must be 0 (all) or positive, got " + maxWindows);
        }
        if (batchWindows < 1) {
            throw new HfpruneException("--batch-windows must be at least 1, got " + batchWindows);
        }
        if ((long) batchWindows * seqLen > Integer.MAX_VALUE) {
            throw new HfpruneException("--batch-windows × --seq-len is too large");
        }
    }

    private List<ZeroShotTask> readTasks() {
        if (tasks == null) {
            return List.of();
        }
        int n = limit == null ? 0 : limit;
        return TaskCatalog.resolve(tasks, () -> Assets.resolve(ZEROSHOT_TASKS)).stream()
                .map(file -> TaskFiles.read(file).limit(n))
                .toList();
    }

    /** Checked on the configurations, before either model is loaded. */
    private static void requireSameVocabulary(Checkpoint model, Checkpoint dense) {
        int v = model.config().vocabSize();
        int r = dense.config().vocabSize();
        if (v != r) {
            throw new HfpruneException("reference " + dense.path() + " has a vocabulary of " + r + " tokens and model "
                    + model.path() + " " + v + ": --reference must be the same family of model, with the same tokenizer");
        }
    }

    private static ModelId id(Checkpoint checkpoint) {
        return new ModelId(checkpoint.name(), checkpoint.sha256());
    }
}
