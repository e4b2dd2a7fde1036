package ai.hfprune.pipeline.run;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.pipeline.aggregator.AggregatorService;
import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.MetricsServer;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.embedded.EmbeddedKafka;
import ai.hfprune.pipeline.pruner.PrunerService;
import ai.hfprune.pipeline.sampler.CalibrationSampler;
import ai.hfprune.pipeline.sampler.DocumentFiles;
import ai.hfprune.pipeline.scorer.ScorerService;
import ai.hfprune.pipeline.serde.InMemorySchemaRegistry;
import ai.hfprune.pipeline.serde.SchemaRegistryHttp;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneStatus;
import io.micrometer.core.instrument.Counter;
import org.apache.kafka.clients.admin.Admin;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The whole pipeline in one JVM, the main job of {@code hfprune run}: a broker (the embedded KRaft broker unless
 * {@code bootstrap.servers} is set), the topics, the aggregator, the pruner, N scorers and the sampler, with every
 * service's metrics on one {@code /metrics}. Without follow mode it returns once the pruner has answered every
 * threshold the calibration data reaches.
 *
 * @param config settings with {@code model}, {@code data} and {@code eval.data} resolved to paths
 */
public final class PipelineRun implements AutoCloseable {

    private final Deque<AutoCloseable> open = new ArrayDeque<>();
    private final PipelineConfig config;
    private final Consumer<String> progress;
    private MetricsServer metrics;
    private CalibrationSampler sampler;
    private PipelineWatcher watcher;
    private final List<ScorerService> scorers = new ArrayList<>();
    private PrunerService pruner;
    /** {@link #config} with the broker's address once it is known. */
    private PipelineConfig cfg;

    private PipelineRun(PipelineConfig config, Consumer<String> progress) {
        this.config = config;
        this.progress = progress;
    }

    /** Starts everything and the sampler; {@link #awaitResults} then waits for the pruned model. */
    public static PipelineRun start(PipelineConfig config, Checkpoint checkpoint, int scorerCount, boolean follow,
                                    Consumer<String> progress) {
        PipelineRun run = new PipelineRun(config, progress);
        try {
            run.startAll(checkpoint, scorerCount, follow);
            return run;
        } catch (RuntimeException e) {
            run.close();
            throw e;
        }
    }

    private void startAll(Checkpoint checkpoint, int scorerCount, boolean follow) {
        if (scorerCount < 1) {
            throw new HfpruneException("--scorers must be at least 1, got " + scorerCount);
        }
        PrunerService.checkSettings(config, checkpoint); // every setting, prune.* included, before the broker starts
        if (!config.get("model.sha256").isBlank()) {
            checkpoint.verifySha256(config.get("model.sha256")); // this process loads the weights: it checks a declared identity
        }
        cfg = config;
        if (cfg.get("bootstrap.servers").isBlank()) {
            progress.accept("starting the embedded Kafka broker (KRaft, single node)");
            EmbeddedKafka broker = EmbeddedKafka.start();
            open.push(broker);
            cfg = cfg.with("bootstrap.servers", broker.bootstrapServers());
        }
        progress.accept("broker " + cfg.get("bootstrap.servers") + ", schema registry " + cfg.get("schema.registry.url"));
        Topics topics = Topics.of(cfg);
        try (Admin admin = Admin.create(ClientConfigs.admin(cfg.get("bootstrap.servers")))) {
            topics.createAll(admin, cfg.getInt("topic.partitions"), (short) cfg.getInt("topic.replication"));
        }
        metrics = MetricsServer.of(cfg);
        open.push(metrics);
        metrics.url("/metrics").ifPresent(url -> progress.accept("metrics at " + url + ", coverage at /coverage"));
        serveRegistry();
        watcher = new PipelineWatcher(cfg.get("bootstrap.servers"), topics, progress);
        open.push(watcher);

        AggregatorService aggregator = new AggregatorService(cfg, topics, List.of(ModelInfo.of(checkpoint)), metrics.registry());
        open.push(aggregator);
        metrics.watch(aggregator);
        aggregator.start();
        aggregator.serveQueries(metrics);

        pruner = new PrunerService(cfg, topics, checkpoint, metrics.registry(), progress);
        open.push(pruner);
        metrics.watch(pruner);
        pruner.start();

        for (int i = 1; i <= scorerCount; i++) {
            ScorerService scorer = new ScorerService(cfg.with("instance.id", "scorer-" + i), topics, checkpoint, metrics.registry());
            open.push(scorer::stop);
            metrics.watch(scorer);
            scorer.start();
            scorers.add(scorer);
        }
        progress.accept("aggregator, pruner and " + scorerCount + " scorer(s) started; sampling " + cfg.get("data")
                + (follow ? " then following " + topics.rawText.name() : ""));
        sampler = new CalibrationSampler(cfg, topics, checkpoint, DocumentFiles.parse(cfg.get("data")), follow, metrics.registry());
        open.push(sampler::stop);
        metrics.watch(sampler);
        sampler.start();
    }

    /**
     * Serves the in-memory registry ({@code mock://…}) over HTTP beside {@code /metrics}, so that services in other
     * processes (more scorers, say) can join this run: they need its broker and its schema ids.
     */
    private void serveRegistry() {
        String url = cfg.get("schema.registry.url");
        if (url.startsWith(InMemorySchemaRegistry.SCHEME)) {
            SchemaRegistryHttp.serve(InMemorySchemaRegistry.scope(url.substring(InMemorySchemaRegistry.SCHEME.length())),
                    metrics::handle);
            metrics.url("").ifPresent(http -> progress.accept("schema registry for services in other processes at " + http));
        }
    }

    /**
     * Waits for the sampler to finish and for the result of every threshold its tokens reach; returns the results.
     */
    public List<PruneResult> awaitResults(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!sampler.awaitCompletion(Duration.ofMillis(500))) {
            watcher.checkHealthy(); // without the watcher no result would ever be seen: fail now, not at the timeout
            if (System.nanoTime() > deadline) {
                throw new HfpruneException("the sampler did not finish within " + timeout.toSeconds() + " s");
            }
        }
        sampler.failure().ifPresent(f -> {
            throw new HfpruneException("the sampler failed: " + f.getMessage(), f);
        });
        long tokens = sampler.tokensSent();
        long min = cfg.getLong("coverage.min.tokens");
        long every = cfg.getLong("coverage.every.tokens");
        if (tokens < min) {
            throw new HfpruneException("the calibration data gave " + tokens + " tokens, fewer than coverage.min.tokens ("
                    + min + "): no prune would be triggered; lower it or give more data");
        }
        // The aggregator triggers once per step that crosses thresholds, for the newest one: a step that folds a whole
        // stats group (many batches at once) can cross several, and the versions in between are never made. So the run
        // is complete at the result whose coverage reaches the last threshold the data reaches, however many came before.
        long lastThreshold = min + (tokens - min) / every * every;
        List<PruneResult> results = new ArrayList<>();
        while (results.isEmpty() || results.get(results.size() - 1).getTokens() < lastThreshold) {
            PruneResult r = watcher.nextResult(Duration.ofSeconds(1));
            if (r != null) {
                results.add(r);
            } else if (!pruner.isRunning()) {
                throw new HfpruneException("the pruner stopped before answering every trigger (see its log above)");
            } else if (System.nanoTime() > deadline) {
                throw new HfpruneException("no prune result at " + lastThreshold + " tokens within " + timeout.toSeconds()
                        + " s (" + results.size() + " results before it); scorer states: "
                        + scorers.stream().map(s -> s.state().toString()).toList());
            }
        }
        return results;
    }

    /** Blocks until interrupted (follow mode), printing nothing itself: the watcher reports; throws if the watcher fails. */
    public void awaitInterrupt() throws InterruptedException {
        watcher.awaitStop();
        new java.util.concurrent.CountDownLatch(1).await(); // closed by a shutdown hook meanwhile: wait for the interrupt
    }

    public double tokensScored() {
        return metrics.registry().find("hfprune_scorer_tokens").counters().stream().mapToDouble(Counter::count).sum();
    }

    public PipelineWatcher watcher() {
        return watcher;
    }

    public MetricsServer metrics() {
        return metrics;
    }

    public String bootstrapServers() {
        return cfg.get("bootstrap.servers");
    }

    /** One line per field of a result, for the terminal. */
    public static String describe(PruneResult r) {
        StringBuilder s = new StringBuilder();
        s.append(String.format("model %s (%s), criterion %s, version %d: %s%n", r.getModel().getName(),
                r.getModel().getSha256().substring(0, 12), r.getCriterion(), r.getVersion(), r.getStatus()));
        s.append(String.format("calibration: %d tokens in %d batches%n", r.getTokens(), r.getBatches()));
        s.append(String.format("cut: mlp ratio %.2f, attention ratio %.2f, %s allocation%n", r.getMlpRatio(), r.getAttnRatio(),
                r.getAllocation()));
        if ("lstsq".equals(r.getCompensation())) {
            s.append(String.format("compensation: least-squares refit of down_proj and o_proj on %d calibration tokens%n",
                    r.getStatsTokens()));
        } else if ("obs".equals(r.getCompensation())) {
            s.append(String.format("compensation: the cut chosen by the refit's error (greedy OBS%s), then the least-squares refit"
                    + " of down_proj and o_proj, on %d calibration tokens%n",
                    r.getOutputErrorsWeighed() ? ", output errors weighed by their sensitivities" : "", r.getStatsTokens()));
        }
        if (r.getStatus() != PruneStatus.FAILED) {
            s.append(String.format("parameters: %,d -> %,d (%.1f%%)%n", r.getParamsBefore(), r.getParamsAfter(),
                    100.0 * r.getParamsAfter() / r.getParamsBefore()));
            s.append("kept MLP neurons per layer: ").append(r.getKept().stream().map(k -> String.valueOf(k.getMlp().size())).toList())
                    .append(", KV groups: ").append(r.getKept().stream().map(k -> String.valueOf(k.getKvGroups().size())).toList())
                    .append('\n');
            Map<String, Double> m = r.getMetrics();
            s.append(String.format("held-out: perplexity %.4f (dense %.4f), KL to dense %.5f nats/token, top-1 agreement %.4f%n",
                    m.getOrDefault("perplexity", Double.NaN), m.getOrDefault("dense_perplexity", Double.NaN),
                    m.getOrDefault("kl", Double.NaN), m.getOrDefault("top1", Double.NaN)));
            if (m.containsKey("recover_kl_after")) {
                s.append(String.format("recovery: held-out KL %.4f -> %.4f (%.0f steps run, best at step %.0f; trained on %.0f"
                                + " calibration windows, %.0f held out)%n", m.get("recover_kl_before"), m.get("recover_kl_after"),
                        m.get("recover_steps_run"), m.get("recover_best_step"), m.get("recover_train_windows"),
                        m.get("recover_held_out_windows")));
            }
            s.append(String.format("kept set changed since the previous version: %.1f%%%n", 100 * r.getKeptChanged()));
            s.append("output: ").append(r.getOutputPath());
        } else {
            s.append("error: ").append(r.getError());
        }
        return s.toString();
    }

    @Override
    public void close() {
        while (!open.isEmpty()) {
            try {
                open.pop().close();
            } catch (Exception e) {
                progress.accept("while stopping: " + e);
            }
        }
    }
}
