package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.compensate.GramAccumulator;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Finalizer;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.importance.ScoringMemory;
import ai.hfprune.engine.importance.ScoringPrecision;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/** The calibration options of {@code score} and {@code prune}, and the scoring loop they drive. */
public class ScoringOptions {

    /** The option names, so that a command can tell whether any was given. */
    static final List<String> NAMES = List.of("--data", "--criterion", "--seq-len", "--max-windows", "--batch-windows", "--seed",
            "--memory", "--dtype");

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

    @Option(names = "--memory", defaultValue = "auto",
            description = "recompute: keep only each layer's input and recompute the layer in the backward pass (memory "
                    + "grows with neither depth nor vocabulary); store: keep every layer's pass from the forward pass "
                    + "(faster, far more memory at long T); auto: store where 1.5 x its estimated memory fits in "
                    + "half of the memory available, else recompute. The scores are the same (default: ${DEFAULT-VALUE}).")
    String memory;

    @Option(names = "--dtype", defaultValue = "float32",
            description = "float32, or bf16: compute the decoder layers in bfloat16, as HFPrune's reference code does: "
                    + "faster where the CPU has AVX-512 BF16 or AMX, scores within about 0.5% of float32's (see the "
                    + "README's Performance section) (default: ${DEFAULT-VALUE}).")
    String dtype;

    /** A {@code --dtype}: float32 (the model's own type) or bf16. */
    static ScoringPrecision precision(String dtype) {
        try {
            return ScoringPrecision.parse(dtype);
        } catch (HfpruneException e) {
            throw new HfpruneException("--dtype: " + e.getMessage(), e);
        }
    }

    public ScoringPrecision precision() {
        return precision(dtype);
    }

    public ScoringMemory memory() {
        return ScoringMemory.parse(memory);
    }

    public Criterion criterion() {
        return Criterion.parse(criterion);
    }

    public int seqLen() {
        return seqLen;
    }

    /** Checks what can be checked before a model is opened; returns the data file. */
    public Path check() {
        criterion();
        memory();
        precision();
        Path dataFile = data != null ? data : Assets.resolve(Assets.DEFAULT_CALIBRATION);
        if (maxWindows < 0) {
            throw new HfpruneException("--max-windows must be 0 (all) or positive, got " + maxWindows);
        }
        return dataFile;
    }

    /** What one calibration pass gives: the scores, and the Gram statistics when they were asked for (else null). */
    public record Calibration(Scores scores, GramStats stats) {
    }

    /** Reads the calibration windows and scores every MLP neuron and query head of {@code checkpoint}, with a progress bar. */
    public Scores score(Checkpoint checkpoint) {
        return calibrate(checkpoint, false).scores();
    }

    /**
     * As {@link #score}, and with {@code withStats} also the Gram statistics of the same forward passes (the input of
     * the least-squares refit).
     */
    public Calibration calibrate(Checkpoint checkpoint, boolean withStats) {
        Criterion c = criterion();
        Path dataFile = check();
        int[][] windows = CalibrationData.readWindows(dataFile, checkpoint::tokenizer,
                checkpoint.config().vocabSize(), seqLen, maxWindows);
        List<int[][]> batches = CalibrationData.batches(windows, batchWindows);
        try (LlamaModel llama = checkpoint.load();
             GramAccumulator stats = withStats ? new GramAccumulator(llama.manager(), llama.layers().size()) : null) {
            ImportanceScorer scorer = new ImportanceScorer(llama, memory(), precision());
            Partial total = scorer.zero(c);
            try (ProgressBar bar = Progress.bar("score " + c.id(), (long) windows.length * seqLen, "tok")) {
                for (int[][] batch : batches) {
                    total = total.plus(scorer.score(batch, Set.of(c), stats).get(c));
                    bar.stepBy((long) batch.length * seqLen);
                }
            }
            return new Calibration(Finalizer.finalize(total, llama, seed), stats == null ? null : stats.drain());
        }
    }
}
