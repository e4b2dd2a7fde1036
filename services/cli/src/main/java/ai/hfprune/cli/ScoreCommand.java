package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Finalizer;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.importance.ScoresFile;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;

@Command(name = "score", mixinStandardHelpOptions = true,
        description = "Score every MLP neuron and attention head of a model on calibration data and write scores.json.")
public class ScoreCommand implements Callable<Integer> {

    @Mixin
    ModelOption model;

    @Option(names = "--data", paramLabel = "FILE",
            description = ".txt (documents split at <|endoftext|> lines) or .json (array of windows of token ids); "
                    + "default: TinyStories train-head-2MiB.txt from the assets folder")
    Path data;

    @Option(names = "--criterion", defaultValue = "entropy",
            description = "entropy (HFPrune), ce, activation, magnitude or random (default: ${DEFAULT-VALUE})")
    String criterion;

    @Option(names = "--seq-len", defaultValue = "128", description = "Tokens per window, T (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--max-windows", defaultValue = "0", description = "Use at most N windows (default: all).")
    int maxWindows;

    @Option(names = "--batch-windows", defaultValue = "8", description = "Windows per forward/backward pass (default: ${DEFAULT-VALUE}).")
    int batchWindows;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random criterion (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--out", required = true, paramLabel = "scores.json", description = "Where to write the scores.")
    Path out;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        Criterion c = Criterion.parse(criterion);
        Path dataFile = data != null ? data : Assets.resolve(Assets.DEFAULT_CALIBRATION);
        if (maxWindows < 0) {
            throw new HfpruneException("--max-windows must be 0 (all) or positive, got " + maxWindows);
        }
        try (Checkpoint checkpoint = model.open()) {
            int[][] windows = CalibrationData.readWindows(dataFile, checkpoint::tokenizer,
                    checkpoint.config().vocabSize(), seqLen, maxWindows);
            List<int[][]> batches = CalibrationData.batches(windows, batchWindows);
            Scores scores;
            try (LlamaModel llama = checkpoint.load()) {
                ImportanceScorer scorer = new ImportanceScorer(llama);
                Partial total = scorer.zero(c);
                try (ProgressBar bar = Progress.bar("score " + c.id(), (long) windows.length * seqLen, "tok")) {
                    for (int[][] batch : batches) {
                        total = total.plus(scorer.score(batch, Set.of(c)).get(c));
                        bar.stepBy((long) batch.length * seqLen);
                    }
                }
                scores = Finalizer.finalize(total, llama, seed);
            }
            ScoresFile.write(out, checkpoint.name(), checkpoint.sha256(), seqLen, scores);
            spec.commandLine().getOut().printf("%s scores of %s (%d layers) from %d windows of %d tokens (%d tokens) written to %s%n",
                    c.id(), checkpoint.name(), scores.mlp().length, scores.windows(), seqLen, scores.tokens(), out);
        }
        return 0;
    }
}
