package ai.hfprune.cli;

import ai.hfprune.pipeline.aggregator.AggregatorMain;
import ai.hfprune.pipeline.common.PipelineService;
import ai.hfprune.pipeline.common.ServiceProcess;
import ai.hfprune.pipeline.pruner.PrunerMain;
import ai.hfprune.pipeline.sampler.CalibrationSampler;
import ai.hfprune.pipeline.sampler.SamplerMain;
import ai.hfprune.pipeline.scorer.ScorerMain;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.util.concurrent.Callable;

/**
 * The four services as separate processes against any Kafka cluster: {@code hfprune sampler|scorer|aggregator|pruner
 * --bootstrap HOST:PORT …}. Each creates the topics it needs if they are missing, serves {@code /metrics} and
 * {@code /health} ({@code /health/live}, {@code /health/ready}), and runs until it is stopped (SIGTERM/Ctrl-C), except
 * a sampler without {@code --follow}, which ends when its files are sent. A service whose worker dies (FAILED) is
 * stopped and the process exits with status 1 ({@code hfprune: error: …}), so a restart policy can bring it back.
 */
public final class ServiceCommands {
    private ServiceCommands() {
    }

    /** What each service command shares: settings (the model and data default to the assets') and the process. */
    abstract static class ServiceCommand implements Callable<Integer> {

        @Mixin
        PipelineOptions options;

        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            ended(process().run(options.config(), out), out);
            return 0;
        }

        /** The service's process (its module's main runs the same). */
        abstract ServiceProcess<?> process();

        /** After a service ended without failing. */
        void ended(PipelineService service, PrintWriter out) {
        }
    }

    @Command(name = "aggregator", mixinStandardHelpOptions = true,
            description = "The Kafka Streams aggregator: sums partials, tracks coverage, emits snapshots and prune triggers; "
                    + "serves /coverage and /scores beside /metrics.")
    static class Aggregator extends ServiceCommand {
        @Override
        ServiceProcess<?> process() {
            return AggregatorMain.process();
        }
    }

    @Command(name = "scorer", mixinStandardHelpOptions = true,
            description = "A scorer: turns calibration batches into importance partials, exactly once (run as many as you like).")
    static class Scorer extends ServiceCommand {
        @Override
        ServiceProcess<?> process() {
            return ScorerMain.process();
        }
    }

    @Command(name = "pruner", mixinStandardHelpOptions = true,
            description = "The pruner: answers each prune trigger with a new, evaluated model version under output.root.")
    static class Pruner extends ServiceCommand {
        @Override
        ServiceProcess<?> process() {
            return PrunerMain.process();
        }
    }

    @Command(name = "sampler", mixinStandardHelpOptions = true,
            description = "The calibration-sampler: packs documents into token batches; with --follow it then follows the raw-text topic.")
    static class Sampler extends ServiceCommand {

        @Option(names = "--follow", description = "After the files, follow the raw-text topic until stopped.")
        boolean follow;

        @Override
        ServiceProcess<?> process() {
            return SamplerMain.process(follow);
        }

        @Override
        void ended(PipelineService service, PrintWriter out) {
            SamplerMain.ended((CalibrationSampler) service, out);
        }
    }
}
