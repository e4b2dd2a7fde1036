package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.pipeline.aggregator.AggregatorService;
import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.MetricsServer;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.PipelineService;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.pruner.PrunerService;
import ai.hfprune.pipeline.sampler.CalibrationSampler;
import ai.hfprune.pipeline.sampler.DocumentFiles;
import ai.hfprune.pipeline.scorer.ScorerService;
import org.apache.kafka.clients.admin.Admin;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

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

    /** What each service command shares: settings, the model, topics, metrics, and waiting for a stop signal. */
    abstract static class ServiceCommand implements Callable<Integer> {

        @Mixin
        PipelineOptions options;

        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            PipelineConfig config = options.config().validate(); // a bad setting fails before topics or the model
            if (config.get("bootstrap.servers").isBlank()) {
                throw new HfpruneException("--bootstrap (or HFPRUNE_BOOTSTRAP_SERVERS) is required for a service");
            }
            PrintWriter out = spec.commandLine().getOut();
            Topics topics = Topics.of(config);
            try (Admin admin = Admin.create(ClientConfigs.admin(config.get("bootstrap.servers")))) {
                topics.createAll(admin, config.getInt("topic.partitions"), (short) config.getInt("topic.replication"));
            }
            try (Checkpoint checkpoint = Checkpoint.open(Path.of(config.get("model")));
                 MetricsServer metrics = MetricsServer.of(config)) {
                PipelineService service = start(config, topics, checkpoint, metrics);
                metrics.watch(service);
                out.printf("%s running against %s; metrics %s%n", spec.name(), config.get("bootstrap.servers"),
                        metrics.url("/metrics").map(url -> "at " + url + ", health at /health").orElse("off"));
                out.flush();
                CountDownLatch stopped = new CountDownLatch(1);
                Thread hook = new Thread(() -> {
                    service.stop(PipelineService.DEFAULT_STOP);
                    stopped.countDown();
                });
                Runtime.getRuntime().addShutdownHook(hook);
                while (!service.awaitEnd(Duration.ofMillis(200)) && stopped.getCount() > 0) {
                    // until a stop signal, the end of a file run, or the worker's death
                }
                if (stopped.getCount() > 0) {
                    Runtime.getRuntime().removeShutdownHook(hook);
                }
                service.stop(PipelineService.DEFAULT_STOP);
                PipelineService.Health health = service.health();
                if (health.status() == PipelineService.Status.FAILED) {
                    // the service logged the cause with its trace; this is the process's one-line answer
                    throw new HfpruneException(service.name() + " failed: " + health.cause());
                }
                ended(service);
            }
            return 0;
        }

        /** Starts the service (its health is then watched). */
        abstract PipelineService start(PipelineConfig config, Topics topics, Checkpoint checkpoint, MetricsServer metrics);

        /** After a service ended without failing. */
        void ended(PipelineService service) {
        }
    }

    @Command(name = "aggregator", mixinStandardHelpOptions = true,
            description = "The Kafka Streams aggregator: sums partials, tracks coverage, emits snapshots and prune triggers; "
                    + "serves /coverage and /scores beside /metrics.")
    static class Aggregator extends ServiceCommand {
        @Override
        PipelineService start(PipelineConfig config, Topics topics, Checkpoint checkpoint, MetricsServer metrics) {
            AggregatorService service = new AggregatorService(config, topics, List.of(ModelInfo.of(checkpoint)), metrics.registry());
            service.start();
            service.serveQueries(metrics);
            return service;
        }
    }

    @Command(name = "scorer", mixinStandardHelpOptions = true,
            description = "A scorer: turns calibration batches into importance partials, exactly once (run as many as you like).")
    static class Scorer extends ServiceCommand {
        @Override
        PipelineService start(PipelineConfig config, Topics topics, Checkpoint checkpoint, MetricsServer metrics) {
            ScorerService service = new ScorerService(config, topics, checkpoint, metrics.registry());
            service.start();
            return service;
        }
    }

    @Command(name = "pruner", mixinStandardHelpOptions = true,
            description = "The pruner: answers each prune trigger with a new, evaluated model version under output.root.")
    static class Pruner extends ServiceCommand {
        @Override
        PipelineService start(PipelineConfig config, Topics topics, Checkpoint checkpoint, MetricsServer metrics) {
            PrunerService service = new PrunerService(config, topics, checkpoint, metrics.registry(), System.out::println);
            service.start();
            return service;
        }
    }

    @Command(name = "sampler", mixinStandardHelpOptions = true,
            description = "The calibration-sampler: packs documents into token batches; with --follow it then follows the raw-text topic.")
    static class Sampler extends ServiceCommand {

        @Option(names = "--follow", description = "After the files, follow the raw-text topic until stopped.")
        boolean follow;

        @Override
        PipelineService start(PipelineConfig config, Topics topics, Checkpoint checkpoint, MetricsServer metrics) {
            CalibrationSampler sampler = new CalibrationSampler(config, topics, checkpoint, DocumentFiles.parse(config.get("data")), follow,
                    metrics.registry());
            sampler.start();
            return sampler;
        }

        @Override
        void ended(PipelineService service) {
            CalibrationSampler sampler = (CalibrationSampler) service;
            if (sampler.completed()) {
                spec.commandLine().getOut().printf("sent %d batches%n", sampler.batchesSent());
            }
        }
    }
}
