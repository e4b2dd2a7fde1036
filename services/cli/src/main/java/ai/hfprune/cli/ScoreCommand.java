package ai.hfprune.cli;

import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.importance.ScoresFile;
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

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        scoring.check(); // bad options are reported before the model is opened
        try (Checkpoint checkpoint = model.open()) {
            Scores scores = scoring.score(checkpoint);
            ScoresFile.write(out, checkpoint.name(), checkpoint.sha256(), scoring.seqLen(), scores);
            spec.commandLine().getOut().printf("%s scores of %s (%d layers) from %d windows of %d tokens (%d tokens) written to %s%n",
                    scores.criterion().id(), checkpoint.name(), scores.mlp().length, scores.windows(), scoring.seqLen(),
                    scores.tokens(), out);
        }
        return 0;
    }
}
