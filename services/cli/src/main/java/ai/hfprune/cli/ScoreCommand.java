package ai.hfprune.cli;

import ai.hfprune.engine.compensate.GramFile;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.importance.ScoresFile;
import ai.hfprune.engine.io.AtomicFiles;
import ai.hfprune.engine.model.Checkpoint;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "score", mixinStandardHelpOptions = true,
        description = "Score every MLP neuron and attention head of a model on calibration data and write scores.json.")
public class ScoreCommand implements Callable<Integer> {

    @Mixin
    ModelOption model;

    @Mixin
    ScoringOptions scoring;

    @Option(names = "--out", required = true, paramLabel = "scores.json", description = "Where to write the scores.")
    Path out;

    @Option(names = "--stats", paramLabel = "FILE",
            description = "Also write the calibration Gram statistics (safetensors, float64) that 'prune --stats' refits with.")
    Path stats;

    @Option(names = "--force", description = "Replace --out and --stats if they exist.")
    boolean force;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        scoring.check(); // bad options are reported before the model is opened
        AtomicFiles.requireWritable(out, force);
        if (stats != null) {
            AtomicFiles.requireWritable(stats, force);
        }
        try (Checkpoint checkpoint = model.open()) {
            ScoringOptions.Calibration calibration = scoring.calibrate(checkpoint, stats != null);
            Scores scores = calibration.scores();
            ScoresFile.write(out, checkpoint.name(), checkpoint.sha256(), scoring.seqLen(), scores);
            if (stats != null) {
                GramFile.write(stats, checkpoint.name(), checkpoint.sha256(), scoring.seqLen(), calibration.stats());
            }
            spec.commandLine().getOut().printf("%s scores of %s (%d layers) from %d windows of %d tokens (%d tokens) written to %s%n",
                    scores.criterion().id(), checkpoint.name(), scores.mlp().length, scores.windows(), scoring.seqLen(),
                    scores.tokens(), out);
            if (stats != null) {
                spec.commandLine().getOut().printf("calibration statistics (Gram matrices of down_proj and o_proj inputs) written to %s%n", stats);
            }
        }
        return 0;
    }
}
