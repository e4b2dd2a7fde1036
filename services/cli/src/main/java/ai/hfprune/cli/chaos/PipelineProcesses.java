package ai.hfprune.cli.chaos;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The processes of one chaos (or baseline) run: the aggregator, the pruner, scorer-1 and scorer-2, each a JVM with a
 * fixed {@code instance.id} and {@code /metrics} port, and the file-mode sampler. What is not killed on purpose and
 * ends anyway (a service that went FAILED exits with status 1) is started again, as a restart policy would.
 */
final class PipelineProcesses {

    private static final Duration STATUS_EVERY = Duration.ofSeconds(60);

    final ServiceProcess aggregator;
    final ServiceProcess pruner;
    final List<ServiceProcess> scorers;
    final ServiceProcess sampler;
    private final List<ServiceProcess> services;
    /** Restarts of processes that ended on their own: name and exit status. */
    private final List<String> exits = new ArrayList<>();
    /** When {@link #supervise} gives up on the run (System.nanoTime), and when it next prints where the run stands. */
    private final long deadlineNanos;
    private final PipelineConfig config;
    private long nextStatusNanos;

    PipelineProcesses(PipelineConfig config, Path logDir, long deadlineNanos) throws IOException {
        this.config = config;
        this.deadlineNanos = deadlineNanos;
        this.nextStatusNanos = System.nanoTime() + STATUS_EVERY.toNanos();
        aggregator = service("aggregator", "2g", config.with("state.dir", logDir.resolveSibling(logDir.getFileName() + "-state").toString()),
                logDir);
        pruner = service("pruner", "2g", config, logDir);
        scorers = List.of(service("scorer-1", "2g", config, logDir), service("scorer-2", "2g", config, logDir));
        sampler = service("sampler", "1g", config, logDir);
        services = new ArrayList<>(List.of(aggregator, pruner));
        services.addAll(scorers);
    }

    private static ServiceProcess service(String name, String heap, PipelineConfig config, Path logDir) throws IOException {
        int port = ListenPorts.next();
        String command = name.startsWith("scorer") ? "scorer" : name;
        List<String> args = new ArrayList<>(List.of(command));
        for (Map.Entry<String, String> e : config.with("instance.id", name).with("metrics.port", String.valueOf(port)).asMap().entrySet()) {
            args.add("--set");
            args.add(e.getKey() + "=" + e.getValue());
        }
        return new ServiceProcess(name, heap, args, logDir, URI.create("http://127.0.0.1:" + port + "/health/ready"),
                URI.create("http://127.0.0.1:" + port + "/metrics"));
    }

    /** Starts the four services and waits until each is ready (RUNNING). */
    void startServices(Duration timeout) throws IOException, InterruptedException {
        for (ServiceProcess s : services) {
            s.start();
        }
        awaitReady(services, timeout);
    }

    void startSampler() throws IOException {
        sampler.start();
    }

    List<ServiceProcess> services() {
        return List.copyOf(services);
    }

    ServiceProcess byName(String name) {
        return services.stream().filter(s -> s.name.equals(name)).findFirst().orElseThrow();
    }

    /**
     * Starts again every service that ended without being killed here (it failed and exited, as a restart policy
     * would see it), and throws if the sampler ended with an error or the run is past its deadline. Every minute it
     * logs where the run stands, so that a slow or stuck run shows where it is. Called often by whoever runs the clock.
     */
    synchronized void supervise(Consumer<String> log) throws IOException {
        long now = System.nanoTime();
        if (now > deadlineNanos) {
            throw new HfpruneException("the run is past its deadline (--timeout-minutes); open transactions on its topics: "
                    + HangingTransactions.find(config.get("bootstrap.servers"), Topics.of(config)) + "; where each process stands:\n"
                    + describe(12));
        }
        if (now > nextStatusNanos) {
            nextStatusNanos = now + STATUS_EVERY.toNanos();
            log.accept("status: " + status());
        }
        for (ServiceProcess s : services) {
            if (!s.isAlive()) {
                String line = s.name + " exited by itself with status " + s.exitStatus().orElse(-1) + "; started again";
                exits.add(line);
                log.accept(line + " (log " + s.log() + ")");
                s.start();
            }
        }
        if (sampler.exitStatus().filter(x -> x != 0).isPresent()) {
            throw new HfpruneException("the sampler ended with status " + sampler.exitStatus().get() + ":\n" + sampler.logTail(20));
        }
    }

    /** One line: each process alive or not, ready or not, and its count of work done (coverage, tokens scored…). */
    String status() {
        List<String> parts = new ArrayList<>();
        for (ServiceProcess s : all()) {
            String work = switch (s.name) {
                case "aggregator" -> counted(s, "hfprune_coverage_tokens", "tokens covered");
                case "sampler" -> counted(s, "hfprune_sampler_batches_total", "batches sent");
                case "pruner" -> counted(s, "hfprune_prune_results_total", "results");
                default -> counted(s, "hfprune_scorer_tokens_total", "tokens scored");
            };
            parts.add(s.name + " " + (!s.isAlive() ? "ended (" + s.exitStatus().orElse(-1) + ")" : s.ready() ? "ready" : "not ready")
                    + ", " + work);
        }
        return String.join("; ", parts);
    }

    private static String counted(ServiceProcess s, String metric, String what) {
        double v = s.metric(metric);
        return v < 0 ? "no /metrics" : String.format("%.0f %s", v, what);
    }

    /** {@link #status} and the last lines of every log. */
    String describe(int lines) {
        StringBuilder b = new StringBuilder(status());
        for (ServiceProcess s : all()) {
            b.append("\n---- ").append(s.log()).append(", last ").append(lines).append(" lines:\n").append(s.logTail(lines));
        }
        return b.toString();
    }

    private List<ServiceProcess> all() {
        List<ServiceProcess> all = new ArrayList<>(services);
        all.add(sampler);
        return all;
    }

    synchronized List<String> exits() {
        return List.copyOf(exits);
    }

    /** SIGTERM to every process (each stops cleanly), then SIGKILL after a minute. */
    void stopAll() throws InterruptedException {
        for (ServiceProcess s : all()) {
            s.stop(Duration.ofSeconds(60));
        }
    }

    static void awaitReady(List<ServiceProcess> processes, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (ServiceProcess s : processes) {
            while (!s.ready()) {
                if (!s.isAlive()) {
                    throw new HfpruneException(s.name + " ended with status " + s.exitStatus().orElse(-1) + " before it was ready:\n"
                            + s.logTail(20));
                }
                if (System.nanoTime() > deadline) {
                    throw new HfpruneException(s.name + " was not ready within " + timeout.toSeconds() + " s; its log " + s.log()
                            + ":\n" + s.logTail(20));
                }
                Thread.sleep(200);
            }
        }
    }
}
