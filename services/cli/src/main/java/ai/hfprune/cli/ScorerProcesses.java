package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.pipeline.common.PipelineConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Scorers as separate JVMs ({@code hfprune scorer}), for {@code bench pipeline --scorer-processes}: each gets this
 * JVM's class path, environment (so the MKL override preloaded here is preloaded there) and {@code hfprune.*} system
 * properties, one PyTorch thread
 * unless {@code ai.djl.pytorch.num_threads} says otherwise, the run's settings, and a log file of its own.
 */
final class ScorerProcesses implements AutoCloseable {

    private final List<Process> processes = new ArrayList<>();
    private final List<Path> logs = new ArrayList<>();

    static ScorerProcesses start(PipelineConfig config, int count, Path logDir) throws IOException {
        ScorerProcesses scorers = new ScorerProcesses();
        try {
            for (int i = 1; i <= count; i++) {
                scorers.startOne(config.with("instance.id", "scorer-process-" + i).with("metrics.port", "-1"), logDir);
            }
            return scorers;
        } catch (IOException | RuntimeException e) {
            scorers.close();
            throw e;
        }
    }

    private void startOne(PipelineConfig config, Path logDir) throws IOException {
        List<String> arguments = new ArrayList<>(List.of("scorer"));
        for (Map.Entry<String, String> e : config.asMap().entrySet()) {
            arguments.add("--set");
            arguments.add(e.getKey() + "=" + e.getValue());
        }
        List<String> command = ChildJvm.command("2g", List.of(), arguments);
        Path log = logDir.resolve(config.get("instance.id") + ".log");
        Files.createDirectories(logDir);
        processes.add(new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start());
        logs.add(log);
    }

    /** Throws if a scorer process has ended: a scorer runs until it is stopped. */
    void checkAlive() {
        for (int i = 0; i < processes.size(); i++) {
            if (!processes.get(i).isAlive()) {
                String tail;
                try {
                    List<String> lines = Files.readAllLines(logs.get(i));
                    tail = String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
                } catch (IOException e) {
                    tail = "(no log: " + e.getMessage() + ")";
                }
                throw new HfpruneException("scorer process " + (i + 1) + " ended with status " + processes.get(i).exitValue()
                        + "; the end of its log " + logs.get(i) + ":\n" + tail);
            }
        }
    }

    /** SIGTERM (a scorer stops cleanly and leaves its group), then SIGKILL after 60 s. */
    @Override
    public void close() {
        processes.forEach(Process::destroy);
        for (Process p : processes) {
            try {
                if (!p.waitFor(60, TimeUnit.SECONDS)) {
                    p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                p.destroyForcibly();
            }
        }
    }
}
