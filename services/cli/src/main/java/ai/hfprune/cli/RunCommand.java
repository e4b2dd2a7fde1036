package ai.hfprune.cli;

import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.run.PipelineRun;
import ai.hfprune.schemas.PruneResult;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "run", mixinStandardHelpOptions = true,
        description = "The main job: prune through the Kafka pipeline (sampler -> scorers -> aggregator -> pruner), on an "
                + "embedded single-node KRaft broker unless --bootstrap is given; stops once the pruned model is written.")
public class RunCommand implements Callable<Integer> {

    @Mixin
    PipelineOptions options;

    @Option(names = "--scorers", defaultValue = "1", description = "Scorer services to run (default: ${DEFAULT-VALUE}).")
    int scorers;

    @Option(names = "--follow", description = "Keep running: follow the raw-text topic and re-prune at every threshold.")
    boolean follow;

    @Option(names = "--timeout-minutes", defaultValue = "60", description = "Give up after this long (default: ${DEFAULT-VALUE}).")
    long timeoutMinutes;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws InterruptedException {
        PrintWriter out = spec.commandLine().getOut();
        PipelineConfig config = options.config();
        try (Checkpoint checkpoint = Checkpoint.open(Path.of(config.get("model")));
             PipelineRun run = PipelineRun.start(config, checkpoint, scorers, follow, line -> {
                 out.println(line);
                 out.flush();
             })) {
            if (follow) {
                Runtime.getRuntime().addShutdownHook(new Thread(run::close));
                run.awaitInterrupt();
                return 0;
            }
            List<PruneResult> results = run.awaitResults(Duration.ofMinutes(timeoutMinutes));
            out.println();
            out.println(PipelineRun.describe(results.get(results.size() - 1)));
        }
        return 0;
    }
}
