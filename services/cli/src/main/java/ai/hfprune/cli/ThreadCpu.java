package ai.hfprune.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * CPU time of this process's threads, grouped by thread name, from {@code /proc/self/task} (Linux): where the cores went
 * during a timed run, native threads (PyTorch's) included. Names are the kernel's (at most 15 characters).
 */
final class ThreadCpu {
    private static final double TICKS_PER_SECOND = 100; // USER_HZ, 100 on every Linux architecture Java runs on

    private record Sample(String name, long ticks) {
    }

    private final Map<String, Sample> start = snapshot();

    /** CPU seconds per thread-name group since this object was made, largest first. */
    Map<String, Double> secondsByGroup() {
        Map<String, Double> out = new HashMap<>();
        snapshot().forEach((tid, now) -> {
            Sample before = start.get(tid);
            long ticks = now.ticks() - (before != null && before.name().equals(now.name()) ? before.ticks() : 0);
            if (ticks > 0) {
                out.merge(group(now.name()), ticks / TICKS_PER_SECOND, Double::sum);
            }
        });
        Map<String, Double> sorted = new LinkedHashMap<>();
        out.entrySet().stream().sorted(Map.Entry.<String, Double>comparingByValue().reversed())
                .forEach(e -> sorted.put(e.getKey(), e.getValue()));
        return sorted;
    }

    /** "kafka-producer-network-thread" and "kafka-producer-n" alike: the name without a trailing number. */
    static String group(String name) {
        return name.replaceAll("[-_# ]*\\d+$", "");
    }

    private static Map<String, Sample> snapshot() {
        Map<String, Sample> out = new HashMap<>();
        try (Stream<Path> tasks = Files.list(Path.of("/proc/self/task"))) {
            tasks.forEach(task -> {
                try {
                    String stat = Files.readString(task.resolve("stat"));
                    // pid (comm) state ... : comm may hold spaces and parentheses, so split at the last ')'
                    int open = stat.indexOf('(');
                    int close = stat.lastIndexOf(')');
                    String[] f = stat.substring(close + 2).split(" ");
                    out.put(task.getFileName().toString(),
                            new Sample(stat.substring(open + 1, close), Long.parseLong(f[11]) + Long.parseLong(f[12])));
                } catch (IOException | RuntimeException e) {
                    // the thread ended meanwhile
                }
            });
        } catch (IOException e) {
            // not Linux: no profile
        }
        return out;
    }
}
