package ai.hfprune.cli.chaos;

import ai.hfprune.cli.Assets;
import ai.hfprune.cli.ModelOption;
import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.FileTrees;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import org.apache.kafka.clients.admin.Admin;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;

/**
 * {@code hfprune bench chaos}: the pipeline with every part as its own JVM ({@code hfprune broker}, aggregator, pruner,
 * two scorers, sampler), kill -9s at seeded random moments while it works, bad records of every kind and duplicates
 * on its topics, and then the checks of {@link ChaosChecks} against the single-process {@link Reference}. Prints
 * the kills by kind with their recovery times, and tokens/s beside a run without kills on the same broker.
 */
@Command(name = "chaos", mixinStandardHelpOptions = true,
        description = "Kill -9s scorers, the aggregator and the broker of a running pipeline (every part its own process), "
                + "sends bad records and duplicates, then checks the result against score and prune on the same windows.")
public class ChaosCommand implements Callable<Integer> {

    @Mixin
    ModelOption model;

    @Option(names = "--data", paramLabel = "FILE", description = "Calibration text (default: TinyStories train-head-2MiB.txt).")
    Path data;

    @Option(names = "--kills", defaultValue = "20", description = "Kills in the chaos run, the broker's one included (default: ${DEFAULT-VALUE}).")
    int kills;

    @Option(names = "--windows", defaultValue = "8000",
            description = "W, calibration windows of each run (default: ${DEFAULT-VALUE}; TinyStories' head gives 8,062 of 128 tokens).")
    int windows;

    @Option(names = "--seed", defaultValue = "1", description = "Seed of the kills' victims and moments (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--seq-len", defaultValue = "128", description = "T (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--batch-windows", defaultValue = "8", description = "B, windows per batch (default: ${DEFAULT-VALUE}).")
    int batchWindows;

    @Option(names = "--gap", split = ",", defaultValue = "2,8", paramLabel = "MIN,MAX",
            description = "Seconds between kills, drawn uniformly from MIN to MAX (default: ${DEFAULT-VALUE}).")
    List<Double> gap;

    @Option(names = "--large-record-mb", defaultValue = "60",
            description = "Size of the large bad records, in MB (10^6 bytes; at most 64; default: ${DEFAULT-VALUE}).")
    int largeRecordMb;

    @Option(names = "--duplicates", defaultValue = "4", description = "Exact copies of valid partials sent (default: ${DEFAULT-VALUE}).")
    int duplicates;

    @Option(names = "--sampler-rate", defaultValue = "0", paramLabel = "B",
            description = "Batches per second the sampler sends, 0 for as fast as it can (default: ${DEFAULT-VALUE}). A slow "
                    + "sampler keeps a short run's data flowing while its kills happen; tokens/s then measure the sampler.")
    double samplerRate;

    @Option(names = "--aggregator-state", defaultValue = "auto", paramLabel = "auto|memory|rocksdb",
            description = "Where the aggregator keeps its state, aggregator.state.store (default: ${DEFAULT-VALUE}).")
    String aggregatorState;

    @Option(names = "--no-broker-kill", description = "Kill scorers and the aggregator only (see the README's Chaos on why the test "
            + "command does).")
    boolean noBrokerKill;

    @Option(names = "--no-baseline", description = "Skip the run without kills (no tokens/s to compare with).")
    boolean noBaseline;

    @Option(names = "--timeout-minutes", defaultValue = "30",
            description = "Give up (and print where each process stands, with its log's last lines) when the runs have not "
                    + "passed their checks this many minutes after the start (default: ${DEFAULT-VALUE}).")
    int timeoutMinutes;

    @Option(names = "--keep", description = "Keep the work folder (logs, broker data, model versions) even when every check passes.")
    boolean keep;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    /** What one run gives. */
    private record RunResult(double seconds, List<KillLoop.Kill> kills, List<KillLoop.Kill> killsBeforeComplete, List<String> exits,
                             List<BadRecords.Injected> injected, int duplicates, ChaosChecks checks, int corruptedStarts,
                             int aggregatorStarts) {
    }

    @Override
    public Integer call() throws Exception {
        if (kills < 1 || windows < 1 || seqLen < 2 || batchWindows < 1 || windows % batchWindows != 0 || gap.size() != 2
                || gap.get(0) < 0 || gap.get(1) < gap.get(0) || largeRecordMb < 1 || largeRecordMb > 64 || duplicates < 1
                || timeoutMinutes < 1 || !(samplerRate >= 0)) {
            throw new HfpruneException("--kills, --windows, --batch-windows, --duplicates and --timeout-minutes must be ≥ 1 with "
                    + "--windows a multiple of --batch-windows, --seq-len ≥ 2, --gap MIN,MAX with 0 ≤ MIN ≤ MAX, --large-record-mb 1 to 64, --sampler-rate ≥ 0");
        }
        PipelineConfig.defaults().with("aggregator.state.store", aggregatorState).aggregatorStateStore(); // refused before any work
        long deadline = System.nanoTime() + Duration.ofMinutes(timeoutMinutes).toNanos();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Path dataFile = data != null ? data : Assets.resolve(Assets.DEFAULT_CALIBRATION);
        String load = loadAverage();
        Path work = Files.createTempDirectory("hfprune-chaos-");
        boolean passed = false;
        try (Checkpoint checkpoint = model.open()) {
            progress(err, "the reference: score on " + windows + " windows of " + seqLen + " tokens in batches of " + batchWindows);
            Reference reference = Reference.compute(checkpoint, dataFile, seqLen, windows, batchWindows, 0.2, 0.25);
            if (reference.sums().windows() != windows) {
                throw new HfpruneException(dataFile + " gives " + reference.sums().windows() + " windows of " + seqLen
                        + " tokens, fewer than --windows " + windows);
            }
            int brokerPort = ListenPorts.next();
            int registryPort = ListenPorts.next();
            ServiceProcess broker = new ServiceProcess("broker", "2g", List.of("broker", "--port", String.valueOf(brokerPort),
                    "--registry-port", String.valueOf(registryPort), "--data-dir", work.resolve("broker").toString()), work.resolve("logs"),
                    URI.create("http://127.0.0.1:" + registryPort + "/subjects"), null);
            progress(err, "starting the broker (hfprune broker, its own process) in " + work);
            broker.start();
            try {
                PipelineProcesses.awaitReady(List.of(broker), Duration.ofMinutes(3));
                PipelineConfig base = PipelineConfig.defaults()
                        .with("bootstrap.servers", "127.0.0.1:" + brokerPort)
                        .with("schema.registry.url", "http://127.0.0.1:" + registryPort)
                        .with("model", checkpoint.path().toString())
                        .with("data", dataFile.toString())
                        .with("eval.data", Assets.resolve(Assets.DEFAULT_EVALUATION).toString())
                        .with("eval.max.windows", "4")
                        .with("criteria", "entropy")
                        .with("seq.len", String.valueOf(seqLen))
                        .with("batch.windows", String.valueOf(batchWindows))
                        .with("max.windows", String.valueOf(windows))
                        .with("sampler.rate.batches.per.second", String.valueOf(samplerRate))
                        .with("aggregator.state.store", aggregatorState)
                        .with("topic.partitions", "4")
                        .with("coverage.min.tokens", String.valueOf(reference.sums().tokens())) // one trigger, at the end
                        .with("coverage.every.tokens", String.valueOf(1L << 50))
                        .with("prune.mlp.ratio", "0.2")
                        .with("prune.attn.ratio", "0.25")
                        .with("prune.compensate", "none"); // scores only: a scorer's transaction is then one poll's batches
                String nonce = Long.toString(System.currentTimeMillis(), 36);
                RunResult baseline = null;
                if (!noBaseline) {
                    progress(err, "run without kills");
                    baseline = run(base, "baseline", nonce, work, checkpoint, reference, broker, null, deadline, err);
                }
                progress(err, "run with " + kills + " kills");
                List<KillLoop.Planned> plan = KillLoop.plan(kills, seed, gap.get(0), gap.get(1), !noBrokerKill);
                RunResult chaos = run(base, "chaos", nonce, work, checkpoint, reference, broker, plan, deadline, err);
                print(out, checkpoint, baseline, chaos, load);
                passed = chaos.checks().allOk();
                if (!passed) {
                    throw new HfpruneException("chaos: " + chaos.checks().checks().stream().filter(c -> !c.ok()).count()
                            + " check(s) failed (see above); open transactions on its topics: " + HangingTransactions.find(
                            base.get("bootstrap.servers"), Topics.of(base.with("topic.prefix", "chaos." + nonce + ".chaos.")))
                            + "; logs in " + work.resolve("logs"));
                }
            } finally {
                broker.stop(Duration.ofSeconds(30));
            }
        } finally {
            if (keep || !passed) { // a failed run keeps its logs
                err.println("bench chaos: the work folder is kept: " + work);
            } else {
                FileTrees.deleteQuietly(work);
            }
        }
        return 0;
    }

    /** One run on fresh topics; with a plan, the kills and the bad records, then the checks. */
    private RunResult run(PipelineConfig base, String label, String nonce, Path work, Checkpoint checkpoint, Reference reference,
                          ServiceProcess broker, List<KillLoop.Planned> plan, long deadline, PrintWriter err) throws Exception {
        PipelineConfig config = base.with("topic.prefix", "chaos." + nonce + "." + label + ".")
                .with("output.root", work.resolve(label + "-pruned").toString());
        Topics topics = Topics.of(config);
        String bootstrap = config.get("bootstrap.servers");
        try (Admin admin = Admin.create(ClientConfigs.admin(bootstrap))) {
            topics.createAll(admin, 4, (short) 1);
        }
        PipelineProcesses processes = new PipelineProcesses(config, work.resolve("logs").resolve(label), deadline);
        long total = reference.sums().tokens();
        try (CompletionWatch clock = new CompletionWatch(bootstrap, topics, total);
             BadRecords bad = new BadRecords(bootstrap, topics, ModelInfo.of(checkpoint), largeRecordMb * 1_000_000, seed)) {
            progress(err, label + ": starting the aggregator, the pruner and 2 scorers (each its own JVM)");
            processes.startServices(Duration.ofMinutes(5));
            progress(err, label + ": services ready; starting the sampler");
            processes.startSampler();
            KillLoop loop = new KillLoop(processes, broker, plan == null ? List.of() : plan, line -> progress(err, label + ": " + line));
            while (!clock.started()) {
                loop.sleepSupervised(Duration.ofMillis(100));
            }
            List<KillLoop.Kill> done = List.of();
            if (plan != null) {
                int[] badAt = injectionMoments(plan.size());
                int quietAt = KillLoop.lastAggregatorDisturbance(plan) + 1;
                done = loop.run(k -> {
                    for (int i = 0; i < badAt.length; i++) {
                        if (badAt[i] == k) {
                            bad.inject(BadRecords.KINDS.get(i));
                            progress(err, label + ": sent bad records: " + BadRecords.KINDS.get(i));
                        }
                    }
                    if (k == quietAt) {
                        sendDuplicates(processes, bad, loop, err, label);
                    }
                });
                loop.awaitReadyAgain(Duration.ofMinutes(5));
                if (quietAt >= plan.size()) {
                    sendDuplicates(processes, bad, loop, err, label);
                }
            }
            while (!clock.complete()) { // until the deadline: supervise() then throws with where each process stands
                loop.sleepSupervised(Duration.ofMillis(200));
            }
            progress(err, String.format("%s: every token aggregated %.1f s after the first batch", label, clock.seconds()));
            loop.stopWatching();
            ChaosChecks checks = new ChaosChecks();
            awaitQuietly(loop, () -> TopicReads.readAll(bootstrap, topics.pruneResults.name()).size() >= 1, Duration.ofMinutes(5));
            checks.triggers(bootstrap, topics, reference, windows / batchWindows);
            checks.results(bootstrap, topics, reference);
            if (plan != null) {
                int expected = bad.injected().size();
                awaitQuietly(loop, () -> TopicReads.readAll(bootstrap, topics.deadLetters.name()).size() >= expected, Duration.ofMinutes(3));
                checks.deadLetters(bootstrap, topics, bad.injected());
                String dup = "hfprune_aggregator_duplicates_dropped_total";
                awaitQuietly(loop, () -> processes.aggregator.metric(dup) >= bad.duplicatesSent(), Duration.ofMinutes(2));
                Thread.sleep(2000); // a later drop would show too
                checks.duplicates(bad.duplicatesSent(), processes.aggregator.metric(dup));
            }
            List<KillLoop.Kill> before = done.stream().filter(k -> k.killedAtNanos < clock.endNanos()).toList();
            // a start of Kafka Streams that found a task's local stores corrupted (RocksDB after an unclean end, unless
            // they are transactional) wipes them and restores them from their changelogs
            return new RunResult(clock.seconds(), done, before, processes.exits(), bad.injected(), bad.duplicatesSent(), checks,
                    processes.aggregator.startsThatLogged("TaskCorruptedException"), processes.aggregator.starts());
        } finally {
            processes.stopAll();
        }
    }

    /** The kill before which each kind of bad record is sent: seeded, within the first 80% of the kills. */
    private int[] injectionMoments(int n) {
        Random r = new Random(seed ^ 0x5DEECE66DL);
        int[] at = new int[BadRecords.KINDS.size()];
        for (int i = 0; i < at.length; i++) {
            at[i] = r.nextInt(Math.max(1, (int) (0.8 * n)));
        }
        return at;
    }

    /** The duplicates go to the aggregator that runs to the end: its counter of drops is then the whole count. */
    private void sendDuplicates(PipelineProcesses processes, BadRecords bad, KillLoop loop, PrintWriter err, String label) {
        try {
            awaitQuietly(loop, processes.aggregator::ready, Duration.ofMinutes(5));
            int sent = bad.duplicate(duplicates);
            progress(err, label + ": sent " + sent + " exact copies of committed partials");
        } catch (Exception e) {
            throw new HfpruneException("chaos could not send duplicates: " + e.getMessage(), e);
        }
    }

    private static void awaitQuietly(KillLoop loop, java.util.function.BooleanSupplier condition, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean() && System.nanoTime() < deadline) {
            loop.sleepSupervised(Duration.ofMillis(500));
        }
    }

    private void print(PrintWriter out, Checkpoint checkpoint, RunResult baseline, RunResult chaos, String loadBefore) {
        ChaosReport.print(out, checkpoint.name(), windows, seqLen, batchWindows, seed, baseline == null ? Double.NaN : baseline.seconds(),
                chaos.seconds(), chaos.kills(), chaos.killsBeforeComplete(), chaos.exits(), chaos.injected(), chaos.duplicates(),
                chaos.checks(), loadBefore, loadAverage());
        out.printf("aggregator.state.store=%s: starts of the aggregator that found their local stores corrupted and restored them "
                + "from the changelogs (TaskCorruptedException): %d of %d%n", aggregatorState, chaos.corruptedStarts(), chaos.aggregatorStarts());
    }

    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }

    private static void progress(PrintWriter err, String line) {
        err.println("bench chaos: " + line);
        err.flush();
    }
}
