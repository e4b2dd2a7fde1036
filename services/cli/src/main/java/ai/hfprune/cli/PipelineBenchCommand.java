package ai.hfprune.cli;

import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.MallocTuning;
import ai.hfprune.engine.MklOverride;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.io.FileTrees;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.pipeline.aggregator.AggregatorService;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.embedded.LocalCluster;
import ai.hfprune.pipeline.run.PipelineWatcher;
import ai.hfprune.pipeline.sampler.BatchPacker;
import ai.hfprune.pipeline.sampler.CalibrationSampler;
import ai.hfprune.pipeline.sampler.DocumentFiles;
import ai.hfprune.pipeline.scorer.ScorerService;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.PruneTrigger;
import ai.hfprune.schemas.TokenBatch;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.common.GroupState;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;

/**
 * {@code hfprune bench pipeline}: tokens/s through the Kafka pipeline on the embedded broker, with 1 and with 2
 * scorers, beside the scorer alone (the same batches scored by {@link ImportanceScorer} in a loop, no Kafka).
 *
 * <p>Each pipeline run is timed in its steady state: fresh topics, the aggregator and the scorers (models loaded,
 * consumer group stable) are started before any clock; the sampler sends W warm-up + N timed batches; the clock runs
 * from the aggregator's prune trigger at the W batches' tokens to its trigger at all W + N batches' tokens, as a
 * {@code read_committed} watcher reads them. The aggregator emits a trigger in the same step in which it folds the
 * batch that crosses the threshold into its sums; it becomes visible when that Streams transaction commits. No pruner
 * runs: pruning after the trigger is not part of the measured path.
 */
@Command(name = "pipeline", mixinStandardHelpOptions = true,
        description = "End-to-end tokens/s through the Kafka pipeline (sampler -> scorers -> aggregator) on the embedded "
                + "broker, with 1 and 2 scorers, beside the scorer alone on the same batches (no Kafka).")
public class PipelineBenchCommand implements Callable<Integer> {

    @Mixin
    ModelOption model;

    @Option(names = "--data", paramLabel = "FILES",
            description = "Comma list of .txt/.jsonl files or folders (default: TinyStories train-head-2MiB.txt).")
    String data;

    @Option(names = "--seq-len", defaultValue = "128", description = "T (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--batch-windows", defaultValue = "8", description = "B, windows per batch (default: ${DEFAULT-VALUE}).")
    int batchWindows;

    @Option(names = "--batches", defaultValue = "128", description = "N, timed batches per run (default: ${DEFAULT-VALUE}).")
    int batches;

    // 192 batches are about 20 s: long enough for the JIT to have compiled the Kafka code that runs once a second
    // (with 64, the compiler still took a tenth of a core in the timed part)
    @Option(names = "--warmup-batches", defaultValue = "192",
            description = "W, batches each run processes before the clock starts, in the same services and JVM "
                    + "(default: ${DEFAULT-VALUE}).")
    int warmupBatches;

    @Option(names = "--scorers", split = ",", defaultValue = "1,2", description = "Scorer counts to run (default: ${DEFAULT-VALUE}).")
    List<Integer> scorerCounts;

    @Option(names = "--scorer-processes", split = ",",
            description = "Also run with this many scorers as separate JVMs each, e.g. 1,2 (default: none).")
    List<Integer> scorerProcessCounts = new ArrayList<>();

    @Option(names = "--synthetic", description = "Use bench score's compute-bound synthetic model (random weights, hidden 512, "
            + "intermediate 1408, 8 layers) with stories3M's vocabulary instead of --model.")
    boolean synthetic;

    @Option(names = "--partitions", defaultValue = "4", description = "Partitions of each topic (default: ${DEFAULT-VALUE}).")
    int partitions;

    @Option(names = "--timeout-minutes", defaultValue = "10", description = "Give up on a run after this long (default: ${DEFAULT-VALUE}).")
    long timeoutMinutes;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    /** One row of the table. */
    record Row(String configuration, long tokens, double seconds, double secondsPerBatch, String note) {
        double tokensPerSecond() {
            return tokens / seconds;
        }
    }

    private static final Criterion CRITERION = Criterion.ENTROPY;

    /** One CPU profile line per timed run, printed after the table. */
    private final List<String> profiles = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        if (seqLen < 2 || batchWindows < 1 || batches < 1 || warmupBatches < 0 || partitions < 1) {
            throw new HfpruneException("--seq-len must be ≥ 2, --batch-windows, --batches and --partitions ≥ 1, --warmup-batches ≥ 0");
        }
        for (int n : concat(scorerCounts, scorerProcessCounts)) {
            if (n < 1) {
                throw new HfpruneException("--scorers must be at least 1, got " + n);
            }
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        String dataList = data != null ? data : Assets.resolve(Assets.DEFAULT_CALIBRATION).toString();
        long tokens = (long) batches * batchWindows * seqLen;
        int total = warmupBatches + batches;
        String nonce = Long.toString(System.currentTimeMillis(), 36);
        Path work = Files.createTempDirectory("hfprune-bench-pipeline-");
        List<Row> rows = new ArrayList<>();
        try (Checkpoint checkpoint = synthetic ? Checkpoint.open(SyntheticBenchModel.write(work.resolve("synthetic")))
                : model.open()) {
            PipelineConfig base = PipelineConfig.defaults()
                    .with("model", checkpoint.path().toString())
                    .with("data", dataList)
                    .with("eval.data", Assets.resolve(Assets.DEFAULT_EVALUATION).toString()) // scorer processes check it
                    .with("criteria", CRITERION.id())
                    .with("seq.len", String.valueOf(seqLen))
                    .with("batch.windows", String.valueOf(batchWindows))
                    .with("topic.partitions", String.valueOf(partitions))
                    .with("metrics.port", "-1")
                    // scores only, as the table's baseline ("scorer alone") computes them: with the refit's statistics a
                    // scorer transaction is a stats group, so the warm-up trigger would wait for the whole run's group
                    .with("prune.compensate", "none");
            List<int[][]> windows = batchesOf(base, checkpoint, total);

            progress(err, "starting the embedded Kafka broker and its schema registry (HTTP, for scorer processes)");
            try (LocalCluster broker = LocalCluster.start(null, 0, 0)) {
                PipelineConfig onBroker = base.with("bootstrap.servers", broker.bootstrapServers())
                        .with("schema.registry.url", broker.registryUrl());
                progress(err, "scorer alone: " + warmupBatches + " + " + batches + " batches");
                rows.add(scorerAlone(checkpoint, windows, tokens));
                for (int i = 0; i < scorerCounts.size(); i++) {
                    int n = scorerCounts.get(i);
                    progress(err, "pipeline with " + n + " scorer" + (n == 1 ? "" : "s") + ": " + warmupBatches + " + "
                            + batches + " batches");
                    String topicPrefix = prefix(nonce, "run" + (i + 1) + "-" + n + "-scorers");
                    rows.add(runPipeline(onBroker, checkpoint, n, 0, topicPrefix, work, err));
                }
                for (int i = 0; i < scorerProcessCounts.size(); i++) {
                    int n = scorerProcessCounts.get(i);
                    progress(err, "pipeline with " + n + " scorer process" + (n == 1 ? "" : "es") + ": " + warmupBatches
                            + " + " + batches + " batches");
                    String topicPrefix = prefix(nonce, "procs" + (i + 1) + "-" + n);
                    rows.add(runPipeline(onBroker, checkpoint, 0, n, topicPrefix, work, err));
                }
            }

            double alone = rows.get(0).tokensPerSecond();
            out.println(MklOverride.describe());
            out.println(MallocTuning.describe());
            out.printf("%s on %s: %d timed batches after %d warm-up batches, %d windows of %d tokens each (%d tokens timed), "
                            + "%s criterion, %d partitions, embedded broker, %d CPU cores%n", checkpoint.name(), dataList, batches,
                    warmupBatches, batchWindows, seqLen, tokens, CRITERION.id(), partitions, Runtime.getRuntime().availableProcessors());
            out.printf("%-30s %9s %9s %10s %7s %9s  %s%n", "configuration", "tokens", "seconds", "tokens/s", "ratio", "s/batch",
                    "not timed");
            for (Row r : rows) {
                out.printf("%-30s %9d %9.2f %10.0f %7.2f %9.3f  %s%n", r.configuration(), r.tokens(), r.seconds(), r.tokensPerSecond(),
                        r.tokensPerSecond() / alone, r.secondsPerBatch(), r.note());
            }
            out.println("scorer alone: ImportanceScorer.score (forward + activation-gradient backward) on the same batches "
                    + "in a loop, in this JVM, the warm-up batches first; no Kafka, no Avro.");
            out.println("pipeline: the steady state of one run (fresh topics and services, started before any clock): the "
                    + "sampler sends all W + N batches; the clock runs from the aggregator's trigger at the W warm-up batches' "
                    + "tokens to its trigger at all W + N batches' tokens, as a watcher reads them (read_committed); no pruner runs.");
            out.println("ratio: pipeline tokens/s over the scorer alone's; the target is >= 0.9 with one scorer. s/batch: timed "
                    + "seconds per timed batch.");
            out.println("CPU seconds by thread (from /proc/self/task; threads under 0.1 s left out):");
            profiles.forEach(p -> out.println("  " + p));
            if (scorerProcessCounts.contains(1) && scorerProcessCounts.contains(2)) {
                double one = rows.stream().filter(r -> r.configuration().endsWith(" 1 scorer process")).findFirst().orElseThrow()
                        .tokensPerSecond();
                double two = rows.stream().filter(r -> r.configuration().endsWith(" 2 scorer processes")).findFirst().orElseThrow()
                        .tokensPerSecond();
                out.printf("2 scorer processes over 1: %.2fx (target >= 1.8 with one PyTorch thread each)%n", two / one);
            }
            if (!scorerProcessCounts.isEmpty()) {
                out.println("scorer processes: separate JVMs (hfprune scorer, this JVM's class path and environment, PyTorch "
                        + "threads as ai.djl.pytorch.num_threads here, default 1); the aggregator, sampler and broker stay in "
                        + "this JVM; the scorers' CPU is not in the profile lines.");
            }
            out.println("2 scorers in one JVM share the " + Runtime.getRuntime().availableProcessors() + " CPU cores and the "
                    + "JVM-wide gradient lock (one GradientCollector at a time): they are not expected to be faster than one; "
                    + "scorers scale across processes or machines.");
            out.flush();
        } finally {
            FileTrees.deleteQuietly(work); // a temporary folder: leave what cannot be deleted
        }
        return 0;
    }

    /** CPU seconds by thread group during a timed run: where the cores went. */
    private static String profileLine(String label, double seconds, ThreadCpu cpu) {
        StringBuilder b = new StringBuilder(String.format("%s, %.1f s wall:", label, seconds));
        double total = 0;
        for (Map.Entry<String, Double> e : cpu.secondsByGroup().entrySet()) {
            total += e.getValue();
            if (e.getValue() >= 0.1) {
                b.append(String.format(" %s %.1f,", e.getKey(), e.getValue()));
            }
        }
        return b.append(String.format(" total %.1f CPU s", total)).toString();
    }

    private static String prefix(String nonce, String label) {
        return "bench." + nonce + "." + label + ".";
    }

    private static void progress(PrintWriter err, String line) {
        err.println("bench pipeline: " + line);
        err.flush();
    }

    /** The first {@code n} batches the sampler sends with these settings, packed by the sampler's own packer. */
    private static List<int[][]> batchesOf(PipelineConfig config, Checkpoint checkpoint, int n) {
        int b = config.getInt("batch.windows");
        BatchPacker packer = new BatchPacker(new ModelId(checkpoint.name(), checkpoint.sha256()), checkpoint.tokenizer(),
                config.getInt("seq.len"), b, List.of(config.get("criteria").split(",")), n * b);
        List<TokenBatch> out = new ArrayList<>();
        for (Path file : DocumentFiles.expand(DocumentFiles.parse(config.get("data")))) {
            if (packer.capped()) {
                break;
            }
            String source = file.getFileName().toString();
            DocumentFiles.forEachDocument(file, config.get("sampler.jsonl.field"), doc -> {
                packer.add(doc, source, out::add);
                return !packer.capped();
            });
        }
        if (out.size() < n || out.stream().anyMatch(t -> t.getWindows().size() != b)) {
            throw new HfpruneException("the data gives " + packer.windowsPacked() + " windows of " + config.getInt("seq.len")
                    + " tokens, fewer than --batches x --batch-windows = " + (long) n * b + "; give more data or ask for less");
        }
        return out.stream().map(BatchPacker::windows).toList();
    }

    /** On a thread of its own, as a ScorerService scores (PyTorch's OpenMP team belongs to the calling thread). */
    private Row scorerAlone(Checkpoint checkpoint, List<int[][]> windows, long tokens) throws InterruptedException {
        FutureTask<Row> task = new FutureTask<>(() -> scorerAloneOnThisThread(checkpoint, windows, tokens));
        new Thread(task, "scorer-alone").start();
        try {
            return task.get();
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        }
    }

    private Row scorerAloneOnThisThread(Checkpoint checkpoint, List<int[][]> windows, long tokens) {
        try (LlamaModel llama = checkpoint.load(LlamaModel.defaultDevice(), DataType.FLOAT32)) {
            ImportanceScorer scorer = new ImportanceScorer(llama);
            Set<Criterion> criteria = Set.of(CRITERION);
            for (int[][] batch : windows.subList(0, warmupBatches)) {
                scorer.score(batch, criteria);
            }
            ThreadCpu cpu = new ThreadCpu();
            long start = System.nanoTime();
            for (int[][] batch : windows.subList(warmupBatches, windows.size())) {
                scorer.score(batch, criteria);
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            profiles.add(profileLine("scorer alone", seconds, cpu));
            return new Row("scorer alone (no Kafka)", tokens, seconds, seconds / batches, "model load, warm-up batches");
        }
    }

    /**
     * One pipeline run on fresh topics: starts aggregator and scorers, then the sampler with W + N batches, and times
     * the steady state from the trigger at W batches' tokens to the trigger at W + N batches'.
     */
    private Row runPipeline(PipelineConfig onBroker, Checkpoint checkpoint, int scorerCount, int processCount,
                            String topicPrefix, Path work, PrintWriter err) throws Exception {
        long tokensPerBatch = (long) batchWindows * seqLen;
        long warmupTokens = warmupBatches * tokensPerBatch;
        long tokens = batches * tokensPerBatch;
        int n = warmupBatches + batches;
        Path stateDir = Files.createDirectories(work.resolve(topicPrefix + "state"));
        PipelineConfig config = onBroker
                .with("topic.prefix", topicPrefix)
                .with("max.windows", String.valueOf(n * batchWindows))
                // triggers at W batches' tokens (the clock starts) and at W + N batches' (it stops)
                .with("coverage.min.tokens", String.valueOf(warmupBatches > 0 ? warmupTokens : warmupTokens + tokens))
                .with("coverage.every.tokens", String.valueOf(tokens))
                .with("state.dir", stateDir.toString())
                .with("instance.id", "bench");
        String bootstrap = config.get("bootstrap.servers");
        Topics topics = Topics.of(config);
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        long setupStart = System.nanoTime();
        try (Admin admin = Admin.create(ai.hfprune.pipeline.common.ClientConfigs.admin(bootstrap))) {
            topics.createAll(admin, partitions, (short) 1);
            List<ScorerService> scorers = new ArrayList<>();
            try (AggregatorService aggregator = new AggregatorService(config, topics, List.of(ModelInfo.of(checkpoint)), meters);
                 PipelineWatcher watcher = new PipelineWatcher(bootstrap, topics, line -> { })) {
                aggregator.start();
                try (ScorerProcesses processes = ScorerProcesses.start(config, processCount, work.resolve(topicPrefix + "logs"))) {
                    for (int i = 1; i <= scorerCount; i++) {
                        ScorerService scorer = new ScorerService(config.with("instance.id", "scorer-" + i), topics, checkpoint, meters);
                        scorers.add(scorer);
                        scorer.start();
                    }
                    Runnable healthy = () -> {
                        checkScorers(scorers);
                        processes.checkAlive();
                    };
                    awaitStableGroup(admin, topicPrefix + "scorers", topics.calibrationBatches.name(), scorerCount + processCount,
                            healthy);
                    double setupSeconds = (System.nanoTime() - setupStart) / 1e9;

                    CalibrationSampler sampler = new CalibrationSampler(config, topics, checkpoint,
                            DocumentFiles.parse(config.get("data")), false, meters);
                    sampler.start();
                    if (warmupBatches > 0) {
                        awaitTrigger(watcher, sampler, scorers, healthy, warmupTokens);
                    }
                    ThreadCpu cpu = new ThreadCpu();
                    long start = System.nanoTime();
                    PruneTrigger trigger = awaitTrigger(watcher, sampler, scorers, healthy, warmupTokens + tokens);
                    double seconds = (System.nanoTime() - start) / 1e9;
                    String label = processCount > 0 ? processCount + " scorer process" + (processCount == 1 ? "" : "es")
                            : scorerCount + " scorer" + (scorerCount == 1 ? "" : "s");
                    profiles.add(profileLine("pipeline, " + label + (processCount > 0 ? " (this JVM only)" : ""), seconds, cpu));
                    sampler.stop();
                    if (trigger.getSnapshot().getTokens() != warmupTokens + tokens || trigger.getSnapshot().getBatches() != n) {
                        throw new HfpruneException("the trigger covers " + trigger.getSnapshot().getTokens() + " tokens in "
                                + trigger.getSnapshot().getBatches() + " batches; expected " + (warmupTokens + tokens) + " in " + n);
                    }
                    long scored = scorers.stream().mapToLong(ScorerService::batchesScored).sum();
                    long dead = scorers.stream().mapToLong(ScorerService::deadLettered).sum();
                    if (dead > 0) {
                        throw new HfpruneException(dead + " batches were dead-lettered during the run");
                    }
                    String split = scorers.stream().map(s -> String.valueOf(s.batchesScored())).reduce((a, b) -> a + "+" + b).orElse("");
                    err.printf("bench pipeline: %s scored %d batches (%s) in %.2f s; services started in %.1f s%n",
                            label, processCount > 0 ? n : scored, processCount > 0 ? "in other JVMs" : split, seconds, setupSeconds);
                    err.flush();
                    return new Row("pipeline, " + label, tokens, seconds,
                            seconds / batches,
                            String.format("start of services and group join (%.1f s), warm-up batches", setupSeconds));
                } finally {
                    for (ScorerService s : scorers) {
                        s.stop(Duration.ofMinutes(2));
                    }
                }
            }
        }
    }

    private PruneTrigger awaitTrigger(PipelineWatcher watcher, CalibrationSampler sampler, List<ScorerService> scorers,
                                      Runnable healthy, long tokens) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofMinutes(timeoutMinutes).toNanos();
        while (true) {
            PruneTrigger t = watcher.nextTrigger(Duration.ofMillis(500));
            if (t != null) {
                if (t.getThresholdTokens() == tokens) {
                    return t;
                }
                continue;
            }
            if (sampler.failure().isPresent()) {
                throw new HfpruneException("the sampler failed: " + sampler.failure().get().getMessage(), sampler.failure().get());
            }
            healthy.run();
            for (ScorerService s : scorers) {
                if (s.deadLettered() > 0) {
                    throw new HfpruneException("scorer " + s.instanceId() + " dead-lettered " + s.deadLettered()
                            + " batch(es) (see its log above): the trigger at " + tokens + " tokens cannot come");
                }
            }
            if (System.nanoTime() > deadline) {
                throw new HfpruneException("no trigger at " + tokens + " tokens within " + timeoutMinutes + " min; scorer states: "
                        + scorers.stream().map(s -> s.state().toString()).toList());
            }
        }
    }

    /** Waits until the scorers' group is stable with every scorer in it and every partition of the topic assigned. */
    private static void awaitStableGroup(Admin admin, String group, String topic, int members, Runnable healthy)
            throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos(); // scorer processes start JVMs and load models
        String last = "";
        while (System.nanoTime() < deadline) {
            healthy.run();
            try {
                ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                long assigned = d.members().stream().map(MemberDescription::assignment)
                        .flatMap(a -> a.topicPartitions().stream()).filter(tp -> tp.topic().equals(topic)).count();
                long total = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
                boolean allHavePartitions = d.members().stream().allMatch(m -> !m.assignment().topicPartitions().isEmpty())
                        || total < members;
                if (d.groupState() == GroupState.STABLE && d.members().size() == members && assigned == total && allHavePartitions) {
                    return;
                }
                last = d.groupState() + " with " + d.members().size() + " members, " + assigned + "/" + total + " partitions";
            } catch (ExecutionException e) {
                last = e.getCause().toString();
            }
            Thread.sleep(50);
        }
        throw new HfpruneException("the scorers' group " + group + " did not become stable within 5 min (" + last + ")");
    }

    private static void checkScorers(List<ScorerService> scorers) {
        for (ScorerService s : scorers) {
            if (s.failure().isPresent()) {
                throw new HfpruneException("scorer " + s.instanceId() + " failed: " + s.failure().get().getMessage(), s.failure().get());
            }
        }
    }

    private static List<Integer> concat(List<Integer> a, List<Integer> b) {
        List<Integer> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }
}
