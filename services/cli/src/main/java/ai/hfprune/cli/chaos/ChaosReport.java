package ai.hfprune.cli.chaos;

import java.io.PrintWriter;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

/** The table {@code bench chaos} prints: kills by kind with recovery times, what was sent, tokens/s, the checks. */
final class ChaosReport {

    private ChaosReport() {
    }

    static void print(PrintWriter out, String model, int windows, int seqLen, int batchWindows, long seed, double baselineSeconds,
                      double chaosSeconds, List<KillLoop.Kill> kills, List<KillLoop.Kill> beforeComplete, List<String> exits,
                      List<BadRecords.Injected> injected, int duplicates, ChaosChecks checks, String loadBefore, String loadAfter) {
        long tokens = (long) windows * seqLen;
        out.printf("bench chaos: %s, %d windows of %d tokens in %d batches of %d, seed %d; hfprune broker, aggregator, pruner, "
                + "scorer-1, scorer-2 and sampler each a JVM of its own; %d CPU cores, load average %s before, %s after%n", model,
                windows, seqLen, windows / batchWindows, batchWindows, seed, Runtime.getRuntime().availableProcessors(), loadBefore,
                loadAfter);
        out.printf("%-11s %5s %12s %8s %17s %8s%n", "kill -9 of", "kills", "ready: median", "max", "working: median", "max");
        Map<String, List<KillLoop.Kill>> byKind = new TreeMap<>(kills.stream().collect(Collectors.groupingBy(KillLoop.Kill::kind)));
        for (Map.Entry<String, List<KillLoop.Kill>> e : byKind.entrySet()) {
            double[] ready = e.getValue().stream().mapToDouble(k -> k.readySeconds).filter(d -> !Double.isNaN(d)).sorted().toArray();
            double[] work = e.getValue().stream().mapToDouble(k -> k.workSeconds).filter(d -> !Double.isNaN(d)).sorted().toArray();
            out.printf("%-11s %5d %12s %8s %17s %8s%n", e.getKey(), e.getValue().size(),
                    ready.length == e.getValue().size() ? seconds(median(ready)) : seconds(median(ready)) + " (" + ready.length + ")",
                    seconds(max(ready)),
                    work.length == 0 ? "-" : seconds(median(work)) + " (" + work.length + ")", seconds(max(work)));
        }
        double[] all = kills.stream().mapToDouble(k -> k.readySeconds).filter(d -> !Double.isNaN(d)).sorted().toArray();
        out.printf("%-11s %5d %12s %8s%n", "all", kills.size(), seconds(median(all)), seconds(max(all)));
        out.printf("ready: seconds from the kill to the successor's /health/ready (the broker: its registry answers); working: to its "
                + "first tokens scored (scorer) or batch summed (aggregator), where that came before the data ran out; (n): of n kills only%n");
        String perKind = byKind.entrySet().stream().map(e -> e.getKey() + " " + beforeComplete.stream()
                .filter(k -> k.kind().equals(e.getKey())).count() + " of " + e.getValue().size()).collect(Collectors.joining(", "));
        out.printf("kills before every token was aggregated: %d of %d (%s); processes that exited by themselves and were started again: %d%s%n",
                beforeComplete.size(), kills.size(), perKind, exits.size(), exits.isEmpty() ? "" : " " + exits);
        Map<String, List<String>> sent = new TreeMap<>(injected.stream().collect(Collectors.groupingBy(BadRecords.Injected::topic,
                Collectors.mapping(i -> i.kind() + " (" + bytes(i.bytes()) + ")", Collectors.toList()))));
        out.printf("bad records sent: %d; exact duplicates of committed partials sent: %d%n", injected.size(), duplicates);
        sent.forEach((topic, list) -> out.printf("  %s: %s%n", topic, String.join(", ", list)));
        out.printf("%-14s %9s %9s %10s %7s%n", "run", "tokens", "seconds", "tokens/s", "ratio");
        if (!Double.isNaN(baselineSeconds)) {
            out.printf("%-14s %9d %9.1f %10.0f %7.2f%n", "without kills", tokens, baselineSeconds, tokens / baselineSeconds, 1.0);
        }
        out.printf("%-14s %9d %9.1f %10.0f %7s%n", "with kills", tokens, chaosSeconds, tokens / chaosSeconds,
                Double.isNaN(baselineSeconds) ? "-" : String.format("%.2f", baselineSeconds / chaosSeconds));
        out.println("seconds: from the first batch on calibration-batches to the committed trigger covering every token (same "
                + "broker, fresh topics and processes for each run); target ratio >= 0.5");
        out.println("checks:");
        for (ChaosChecks.Check c : checks.checks()) {
            out.printf("  %-4s %s: %s%n", c.ok() ? "ok" : "FAIL", c.what(), c.detail());
        }
        if (!checks.reasons().isEmpty()) {
            out.println("dead letters of the bad records (topic, kind, size -> service: reason):");
            checks.reasons().forEach(r -> out.println("  " + r));
        }
        out.flush();
    }

    private static String bytes(int n) {
        return n >= 1_000_000 ? String.format("%.1f MB", n / 1e6) : n + " B";
    }

    private static double median(double[] sorted) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int m = sorted.length / 2;
        return sorted.length % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
    }

    private static double max(double[] sorted) {
        return sorted.length == 0 ? Double.NaN : Arrays.stream(sorted).max().getAsDouble();
    }

    private static String seconds(double s) {
        return Double.isNaN(s) ? "-" : String.format("%.1f", s);
    }
}
