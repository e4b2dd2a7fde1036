package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.pipeline.aggregator.AggregatorService;
import ai.hfprune.pipeline.common.MetricsServer;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.pruner.PrunerService;
import ai.hfprune.pipeline.sampler.CalibrationSampler;
import ai.hfprune.pipeline.sampler.DocumentFiles;
import ai.hfprune.pipeline.scorer.ScorerService;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/**
 * The four services as separate processes against any Kafka cluster: {@code hfprune sampler|scorer|aggregator|pruner
 * --bootstrap HOST:PORT …}. Each creates the topics it needs if they are missing, serves {@code /metrics}, and runs
 * until it is stopped (SIGTERM/Ctrl-C), except a sampler without {@code --follow}, which ends when its files are sent.
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
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, config.get("bootstrap.servers")))) {
                topics.createAll(admin, config.getInt("topic.partitions"), (short) config.getInt("topic.replication"));
            }
            try (Checkpoint checkpoint = Checkpoint.open(Path.of(config.get("model")));
                 MetricsServer metrics = MetricsServer.of(config)) {
                AutoCloseable service = start(config, topics, checkpoint, metrics);
                out.printf("%s running against %s; metrics %s%n", spec.name(), config.get("bootstrap.servers"),
                        metrics.url("/metrics").map(url -> "at " + url).orElse("off"));
                out.flush();
                CountDownLatch stopped = new CountDownLatch(1);
                Thread hook = new Thread(() -> {
                    close(service);
                    stopped.countDown();
                });
                Runtime.getRuntime().addShutdownHook(hook);
                awaitEnd(service, stopped);
                Runtime.getRuntime().removeShutdownHook(hook);
                close(service);
            }
            return 0;
        }

        abstract AutoCloseable start(PipelineConfig config, Topics topics, Checkpoint checkpoint, MetricsServer metrics);

        /** Services run until the JVM is asked to stop. */
        void awaitEnd(AutoCloseable service, CountDownLatch stopped) throws InterruptedException {
            stopped.await();
        }

        private static void close(AutoCloseable service) {
            try {
                service.close();
            } catch (Exception e) {
                System.err.println("hfprune: while stopping: " + e);
            }
        }
    }

    @Command(name = "aggregator", mixinStandardHelpOptions = true,
            description = "The Kafka Streams aggregator: sums partials, tracks coverage, emits snapshots and prune triggers; "
                    + "serves /coverage and /scores beside /metrics.")
    static class Aggregator extends ServiceCommand {
        @Override
        AutoCloseable start(PipelineConfig config, Topics topics, Checkpoint checkpoint, MetricsServer metrics) {
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
        AutoCloseable start(PipelineConfig config, Topics topics, Checkpoint checkpoint, MetricsServer metrics) {
            ScorerService service = new ScorerService(config, topics, checkpoint, metrics.registry());
            service.start();
            return service::stop;
        }
    }

    @Command(name = "pruner", mixinStandardHelpOptions = true,
            description = "The pruner: answers each prune trigger with a new, evaluated model version under output.root.")
    static class Pruner extends ServiceCommand {
        @Override
        AutoCloseable start(PipelineConfig config, Topics topics, Checkpoint checkpoint, MetricsServer metrics) {
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

        private CalibrationSampler sampler;

        @Override
        AutoCloseable start(PipelineConfig config, Topics topics, Checkpoint checkpoint, MetricsServer metrics) {
            sampler = new CalibrationSampler(config, topics, checkpoint, DocumentFiles.parse(config.get("data")), follow,
                    metrics.registry());
            sampler.start();
            return sampler::stop;
        }

        @Override
        void awaitEnd(AutoCloseable service, CountDownLatch stopped) throws InterruptedException {
            if (follow) {
                stopped.await();
                return;
            }
            while (!sampler.awaitCompletion(java.time.Duration.ofSeconds(1))) {
                if (stopped.getCount() == 0) {
                    return;
                }
            }
            sampler.failure().ifPresent(f -> {
                throw new HfpruneException("the sampler failed: " + f.getMessage(), f);
            });
            spec.commandLine().getOut().printf("sent %d batches%n", sampler.batchesSent());
        }
    }
}
