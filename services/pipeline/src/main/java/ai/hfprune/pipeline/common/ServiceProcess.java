package ai.hfprune.pipeline.common;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.model.CheckpointFiles;
import org.apache.kafka.clients.admin.Admin;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.function.Function;

/**
 * One service as its own process against a Kafka cluster: creates the topics it needs if they are missing, opens the
 * model, starts the service, serves {@code /metrics} and {@code /health}, and runs until it is stopped (SIGTERM/Ctrl-C),
 * its work ends (a sampler's file run) or its worker dies (FAILED: an {@link HfpruneException} naming the cause, so the
 * process exits non-zero and a restart policy can bring it back). {@code hfprune sampler|scorer|aggregator|pruner} and
 * each service module's own {@code main} (the service's image, which holds no command line) run it.
 *
 * @param <M> what the service opens the model as: the PyTorch-free {@code CheckpointFiles} (aggregator, sampler) or
 *            the loadable {@code Checkpoint} (scorer, pruner)
 */
public final class ServiceProcess<M extends CheckpointFiles> {

    /** Starts the service on the opened model (its health is then watched). */
    public interface Starter<M> {
        PipelineService start(PipelineConfig config, Topics topics, M model, MetricsServer metrics);
    }

    private final String name;
    private final Function<Path, M> open;
    private final boolean readsWeights;
    private final Starter<M> starter;

    /**
     * @param readsWeights whether the service loads the weights (scorer, pruner): a declared {@code model.sha256} is
     *                     then checked against their digest; otherwise (aggregator, sampler) it is taken without
     *                     reading them ({@link CheckpointFiles#declareSha256})
     */
    public ServiceProcess(String name, Function<Path, M> open, boolean readsWeights, Starter<M> starter) {
        this.name = name;
        this.open = open;
        this.readsWeights = readsWeights;
        this.starter = starter;
    }

    /** Runs the service until it ends; @return the service, stopped, for what it reports after a clean end. */
    public PipelineService run(PipelineConfig config, PrintWriter out) throws InterruptedException {
        config.validate(); // a bad setting fails before topics or the model
        if (config.get("bootstrap.servers").isBlank()) {
            throw new HfpruneException("--bootstrap (or HFPRUNE_BOOTSTRAP_SERVERS) is required for a service");
        }
        if (config.get("model").isBlank()) {
            throw new HfpruneException("the model is required for a service (HFPRUNE_MODEL or --set model=PATH)");
        }
        Topics topics = Topics.of(config);
        try (Admin admin = Admin.create(ClientConfigs.admin(config.get("bootstrap.servers")))) {
            topics.createAll(admin, config.getInt("topic.partitions"), (short) config.getInt("topic.replication"));
        }
        M model = open.apply(Path.of(config.get("model")));
        try (model; MetricsServer metrics = MetricsServer.of(config)) {
            String declared = config.get("model.sha256");
            if (!declared.isBlank() && readsWeights) {
                model.verifySha256(declared);
            } else if (!declared.isBlank()) {
                model.declareSha256(declared);
            }
            PipelineService service = starter.start(config, topics, model, metrics);
            metrics.watch(service);
            out.printf("%s running against %s; metrics %s%n", name, config.get("bootstrap.servers"),
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
            return service;
        } catch (InterruptedException | RuntimeException e) {
            throw e;
        } catch (Exception e) { // closing the model
            throw new HfpruneException("cannot close the model: " + e.getMessage(), e);
        }
    }

    /**
     * A service image's {@code main}: settings from the environment ({@code HFPRUNE_*}), {@code --config FILE} and
     * {@code --set KEY=VALUE}; bad input answers one line {@code hfprune: error: …} and exit status 1.
     *
     * @param flags the service's own flags besides those (e.g. the sampler's {@code --follow})
     * @return the exit status
     */
    public static int main(String[] args, Set<String> flags, Body body) {
        try {
            Map<String, String> settings = new LinkedHashMap<>();
            Set<String> given = new HashSet<>();
            Path file = null;
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                if (flags.contains(a)) {
                    given.add(a);
                } else if (a.equals("--config") && i + 1 < args.length) {
                    file = Path.of(args[++i]);
                } else if (a.equals("--set") && i + 1 < args.length && args[i + 1].indexOf('=') > 0) {
                    String kv = args[++i];
                    settings.put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
                } else {
                    throw new HfpruneException("unknown argument '" + a + "' (settings: --set KEY=VALUE, --config FILE"
                            + (flags.isEmpty() ? "" : ", " + String.join(", ", flags)) + ")");
                }
            }
            body.run(PipelineConfig.load(settings, file, System.getenv()), given, new PrintWriter(System.out, true));
            return 0;
        } catch (HfpruneException e) {
            System.err.println("hfprune: error: " + e.getMessage());
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            System.err.println("hfprune: error: interrupted");
            return 1;
        }
    }

    /** What a service's {@code main} does with its settings and the flags it was given. */
    public interface Body {
        void run(PipelineConfig config, Set<String> flags, PrintWriter out) throws InterruptedException;
    }
}
