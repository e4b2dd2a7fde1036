package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.PrunedModel;
import ai.hfprune.engine.recover.Recovery;
import ai.hfprune.engine.recover.RecoveryListener;
import ai.hfprune.engine.recover.RecoveryOptions;
import ai.hfprune.engine.recover.RecoveryResult;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/**
 * The recovery options of {@code prune}: after the cut (and the refit), self-distillation of the pruned model towards
 * the dense one on calibration windows, with windows held out for early stopping ({@link Recovery}).
 */
public class RecoveryOption {

    @Option(names = "--recover-steps", defaultValue = "0", paramLabel = "N",
            description = "After the cut, train the pruned model to match the dense model's next-token distribution for at"
                    + " most N Adam steps (0: no recovery; default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--recover-lr", paramLabel = "LR",
            description = "Peak learning rate of recovery (warm-up, then cosine decay), used as given (default: 1e-3 for all"
                    + " weights, 1e-2 for LoRA, measured on stories260K, divided by 10 up to twice while no held-out evaluation"
                    + " beats the start).")
    Double learningRate;

    @Option(names = "--recover-data", paramLabel = "FILE",
            description = "Text or windows to recover on (default: the calibration data).")
    Path data;

    @Option(names = "--recover-windows", defaultValue = "256", paramLabel = "N",
            description = "Training windows of recovery (default: ${DEFAULT-VALUE}).")
    int trainWindows;

    @Option(names = "--recover-held-out", defaultValue = "32", paramLabel = "N",
            description = "Windows after the training windows, held out to stop recovery early: the result is the best"
                    + " weights on them, never worse than the start (default: ${DEFAULT-VALUE}).")
    int heldOutWindows;

    @Option(names = "--lora-rank", defaultValue = "0", paramLabel = "R",
            description = "0: train every weight; R > 0: train rank-R LoRA adapters on q/k/v/o/gate/up/down and merge them"
                    + " into the weights at the end (default: ${DEFAULT-VALUE}).")
    int loraRank;

    /** What recovery did, for the summary and the report; null when it did not run. */
    public record Done(RecoveryResult result, RecoveryOptions options, int trainWindows, int heldOutWindows) {
    }

    public boolean enabled() {
        return steps > 0;
    }

    /** Checks what can be checked before a model is opened. */
    public void check() {
        if (steps < 0) {
            throw new HfpruneException("--recover-steps must be 0 (no recovery) or positive, got " + steps);
        }
        if (loraRank < 0) {
            throw new HfpruneException("--lora-rank must be 0 (train every weight) or positive, got " + loraRank);
        }
        if (trainWindows < 1 || heldOutWindows < 1) {
            throw new HfpruneException("--recover-windows and --recover-held-out must be at least 1");
        }
        options();
    }

    private RecoveryOptions options() {
        try {
            return RecoveryOptions.of(steps, loraRank, learningRate);
        } catch (IllegalArgumentException e) {
            throw new HfpruneException("recovery: " + e.getMessage(), e);
        }
    }

    /**
     * Recovers {@code pruned} towards the checkpoint's dense model, with a progress bar.
     *
     * @param calibration the data the scores came from, the default training data
     */
    public Done run(Checkpoint checkpoint, PrunedModel pruned, Path calibration, int seqLen) {
        Path file = data != null ? data : calibration;
        int[][] all = CalibrationData.readWindows(file, checkpoint::tokenizer, checkpoint.config().vocabSize(), seqLen,
                trainWindows + heldOutWindows);
        if (all.length < trainWindows + heldOutWindows) {
            throw new HfpruneException(file + " has " + all.length + " windows of " + seqLen + " tokens, fewer than"
                    + " --recover-windows " + trainWindows + " + --recover-held-out " + heldOutWindows);
        }
        int[][] train = Arrays.copyOfRange(all, 0, trainWindows);
        int[][] heldOut = Arrays.copyOfRange(all, trainWindows, all.length);
        RecoveryOptions options = options();
        try (LlamaModel teacher = checkpoint.load(); ProgressBar bar = Progress.bar("recover", steps, "step")) {
            RecoveryResult r = Recovery.run(teacher, pruned.config(), pruned.weights(), train, heldOut, options,
                    new RecoveryListener() {
                        @Override
                        public void step(int step, int total, double loss) {
                            bar.stepTo(step);
                        }

                        @Override
                        public void evaluated(int step, double kl, boolean best) {
                            bar.setExtraMessage(String.format(Locale.ROOT, " held-out KL %.4f%s", kl, best ? " (best)" : ""));
                        }

                        @Override
                        public void backedOff(int step, double lr) {
                            bar.setExtraMessage(String.format(Locale.ROOT, " no better than the start: from it again at lr %.0e", lr));
                        }
                    });
            return new Done(r, options, train.length, heldOut.length);
        }
    }
}
