package ai.hfprune.cli.chaos;

import ai.hfprune.cli.ChildJvm;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * One {@code hfprune} command as a JVM of its own (a service or the broker), started again with the same arguments
 * after a kill -9, as a restart policy would (same {@code instance.id}, ports and folders). Like {@code bench pipeline
 * --scorer-processes}, it gets this JVM's class path, environment (the MKL override preloaded here is preloaded there)
 * and {@code hfprune.*} system properties, one PyTorch thread, and a log file of its own that each start appends to.
 */
final class ServiceProcess {

    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    /** Every process started here, so that none outlives this JVM (Ctrl-C, a test's timeout): a child is not killed with it. */
    private static final java.util.Set<Process> LIVE = java.util.concurrent.ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroyForcibly), "chaos-children"));
    }

    final String name;
    private final List<String> command;
    private final Path log;
    /** Where readiness is asked: the service's {@code /health/ready}, or the broker's registry. */
    private final URI readyUri;
    private final URI metricsUri;
    private Process process;
    private int starts;

    ServiceProcess(String name, String heap, List<String> arguments, Path logDir, URI readyUri, URI metricsUri) {
        this.name = name;
        this.readyUri = readyUri;
        this.metricsUri = metricsUri;
        this.log = logDir.resolve(name + ".log");
        this.command = ChildJvm.command(heap, List.of("-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS"), arguments);
    }

    /** Starts (or starts again) the process; its output goes to the end of its log. */
    synchronized void start() throws IOException {
        Files.createDirectories(log.getParent());
        Files.writeString(log, "---- start " + (++starts) + " at " + java.time.Instant.now() + "\n",
                java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        process = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        LIVE.add(process);
        process.onExit().thenAccept(LIVE::remove);
    }

    /** kill -9 ({@link Process#destroyForcibly} sends SIGKILL on Linux), waiting until the process is gone. */
    synchronized void kill9() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    synchronized boolean isAlive() {
        return process != null && process.isAlive();
    }

    /** The exit status of a process that ended, if it did. */
    synchronized Optional<Integer> exitStatus() {
        return process == null || process.isAlive() ? Optional.empty() : Optional.of(process.exitValue());
    }

    /** SIGTERM (a service stops cleanly and leaves its group), then SIGKILL after {@code grace}. */
    synchronized void stop(Duration grace) throws InterruptedException {
        if (process == null) {
            return;
        }
        process.destroy();
        if (!process.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** True when the process answers 200 on its readiness URI. */
    boolean ready() {
        return get(readyUri).map(r -> r.statusCode() == 200).orElse(false);
    }

    /** The sum of a Prometheus counter's samples on {@code /metrics} (every tag), or -1 when it does not answer. */
    double metric(String name) {
        if (metricsUri == null) {
            return -1;
        }
        Optional<HttpResponse<String>> r = get(metricsUri);
        if (r.isEmpty() || r.get().statusCode() != 200) {
            return -1;
        }
        double sum = 0;
        for (String line : r.get().body().split("\n")) {
            if (line.startsWith(name + " ") || line.startsWith(name + "{")) {
                sum += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        return sum;
    }

    Path log() {
        return log;
    }

    /** How many of this process's starts so far wrote {@code text} to the log (each start's part begins with "---- start"). */
    int startsThatLogged(String text) {
        try {
            int found = 0;
            boolean inThisStart = false;
            for (String line : Files.readAllLines(log)) {
                if (line.startsWith("---- start ")) {
                    inThisStart = false;
                } else if (!inThisStart && line.contains(text)) {
                    inThisStart = true;
                    found++;
                }
            }
            return found;
        } catch (IOException e) {
            return -1;
        }
    }

    synchronized int starts() {
        return starts;
    }

    /** The last lines of the log, for a message. */
    String logTail(int lines) {
        try {
            List<String> all = Files.readAllLines(log);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    private static Optional<HttpResponse<String>> get(URI uri) {
        try {
            return Optional.of(HTTP.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(3)).GET().build(),
                    HttpResponse.BodyHandlers.ofString()));
        } catch (IOException e) {
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        }
    }
}
