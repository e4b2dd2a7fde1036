package ai.hfprune.pipeline.pruner;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.compensate.Compensation;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.compensate.Refit;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.eval.Evaluator;
import ai.hfprune.engine.eval.WindowMetrics;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.Finalizer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.WeightCheck;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.ExportFormat;
import ai.hfprune.engine.prune.HfExport;
import ai.hfprune.engine.prune.Allocation;
import ai.hfprune.engine.prune.GgufExport;
import ai.hfprune.engine.prune.ModelExport;
import ai.hfprune.engine.prune.ParameterCount;
import ai.hfprune.engine.prune.Planner;
import ai.hfprune.engine.prune.PruneOptions;
import ai.hfprune.engine.prune.PruneReport;
import ai.hfprune.engine.prune.PrunedModel;
import ai.hfprune.engine.prune.Pruner;
import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.DeadLetters;
import ai.hfprune.pipeline.common.Keys;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.ServiceBase;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.scorer.TokenBatchValidator;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.LayerKept;
import ai.hfprune.schemas.LayerScores;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneStatus;
import ai.hfprune.schemas.PruneTrigger;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.binder.kafka.KafkaClientMetrics;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * The pruner service: for each {@link PruneTrigger}, finalizes the snapshot's sums into scores, plans and applies the
 * cut with the engine, writes a new versioned model directory (atomically, under its output root), evaluates it
 * against the dense model on held-out text, and publishes a {@link PruneResult}, in one Kafka transaction with the
 * trigger's offset. With {@code prune.compensate=lstsq} the cut is followed by the least-squares refit of the kept
 * columns ({@link Refit}) on the version's calibration statistics, read from calibration-stats ({@link StatsReader});
 * a version without complete statistics fails (a FAILED result that says what is missing). With
 * {@code prune.recover.steps} > 0 the model is then recovered by self-distillation ({@link PrunerRecovery}) before it
 * is evaluated and written. A version whose kept set (and, with the refit, whose statistics' tokens, and with
 * recovery, whose recovery windows) equal the previous one's is not written again.
 */
public final class PrunerService extends ServiceBase {

    private static final Logger LOG = LoggerFactory.getLogger(PrunerService.class);

    private final PipelineConfig config;
    private final Checkpoint checkpoint;
    private final ModelInfo model;
    private final MeterRegistry meters;
    private final Topics topics;
    private final Path outputRoot;
    private final Map<String, List<LayerKept>> previousKept = new ConcurrentHashMap<>();
    private final Map<String, String> previousPath = new ConcurrentHashMap<>();
    private final Map<String, Long> previousStatsTokens = new ConcurrentHashMap<>();
    private final Map<String, Integer> previousRecoveryWindows = new ConcurrentHashMap<>();
    private final Map<String, Map<String, Double>> previousMetrics = new ConcurrentHashMap<>();
    /** The cut, from the prune.* settings, checked against the model when the service is made. */
    private final PruneOptions options;
    private final Compensation compensation;
    private final double damping;
    private final RecoverySettings recoverySettings;
    private final Consumer<String> progress;
    private final ModelExport.Options export;
    private StatsReader statsReader;
    private PrunerRecovery recovery;
    private final Map<String, Map<String, AtomicReference<Double>>> gauges = new ConcurrentHashMap<>();

    private LlamaModel dense;
    private int[][] evalWindows;
    private double densePerplexity;
    private KafkaConsumer<byte[], byte[]> consumer;
    private KafkaProducer<byte[], byte[]> producer;
    private Thread thread;
    private volatile boolean running;
    private int crashAtRecoveryStep;

    /** The checkpoint stays the caller's and must stay open while the pruner runs; progress is logged. */
    public PrunerService(PipelineConfig config, Topics topics, Checkpoint checkpoint, MeterRegistry meters) {
        this(config, topics, checkpoint, meters, LOG::info);
    }

    /** @param progress told of long work (recovery), a line at a time */
    public PrunerService(PipelineConfig config, Topics topics, Checkpoint checkpoint, MeterRegistry meters,
                         Consumer<String> progress) {
        this.config = config;
        this.progress = progress;
        this.checkpoint = checkpoint;
        this.model = ModelInfo.of(checkpoint);
        this.meters = meters;
        this.topics = topics;
        this.outputRoot = Path.of(config.get("output.root")).toAbsolutePath().normalize();
        this.options = checkSettings(config, checkpoint);
        this.compensation = Compensation.parse(config.compensation());
        this.damping = config.damping();
        this.recoverySettings = RecoverySettings.of(config);
        this.export = exportOptions(config);
        if (export.format().writesGguf()) {
            GgufExport.checkSource(checkpoint); // a model GGUF cannot hold fails the service on start, not every version
        }
    }

    /** {@code prune.format} and {@code prune.gguf.type}, as the pruner writes each version (2 GB Hugging Face shards). */
    public static ModelExport.Options exportOptions(PipelineConfig config) {
        try {
            return new ModelExport.Options(ExportFormat.parse(config.get("prune.format")),
                    ExportFormat.parseGgufType(config.get("prune.gguf.type")), 2L << 30, false);
        } catch (HfpruneException e) {
            throw new HfpruneException("setting prune.format/prune.gguf.type: " + e.getMessage(), e);
        }
    }

    /**
     * Checks every setting the pruner uses against the model and returns the cut: besides {@link PipelineConfig#validate},
     * the cut is planned once on this model with equal scores, so that a ratio the model cannot take (an attention
     * ratio that removes no whole number of KV groups) fails now and not at the first trigger, after the calibration.
     */
    public static PruneOptions checkSettings(PipelineConfig config, Checkpoint checkpoint) {
        config.validate();
        RecoverySettings.of(config);
        PruneOptions options = config.pruneOptions();
        LayerWidths widths = WeightCheck.layerWidths(checkpoint.config(), checkpoint.weights());
        double[][] mlp = new double[widths.numLayers()][];
        double[][] heads = new double[widths.numLayers()][];
        for (int l = 0; l < widths.numLayers(); l++) {
            mlp[l] = new double[widths.intermediateSize(l)];
            heads[l] = new double[widths.numAttentionHeads(l)];
        }
        try {
            Planner.plan(widths, new Scores(Criterion.RANDOM, 0, 0, mlp, heads), options);
        } catch (HfpruneException e) {
            throw new HfpruneException("settings prune.*: " + e.getMessage() + " (" + checkpoint.name() + ")", e);
        }
        return options;
    }

    /**
     * Loads the dense model and the evaluation windows ({@code eval.data}, a file path), then consumes triggers on a
     * background thread.
     */
    @Override
    public void start() {
        String bootstrap = config.get("bootstrap.servers");
        Path evalData = Path.of(config.get("eval.data"));
        dense = checkpoint.load();
        evalWindows = CalibrationData.readWindows(evalData, checkpoint::tokenizer, checkpoint.config().vocabSize(),
                config.getInt("seq.len"), config.getInt("eval.max.windows"));
        densePerplexity = Evaluator.perplexity(dense, evalWindows, config.getInt("batch.windows")).perplexity();

        String prefix = config.get("topic.prefix");
        Map<String, Object> c = ClientConfigs.groupConsumer(bootstrap, prefix + "pruner-" + config.instanceId() + "-consumer", prefix + "pruner");
        c.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 1);
        c.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 30 * 60 * 1000);
        consumer = new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        statsReader = new StatsReader(bootstrap, topics, model, config.prunerStatsTimeoutMillis());
        if (recoverySettings.enabled()) {
            TokenBatchValidator batches = new TokenBatchValidator(topics.calibrationBatches.valueSerde().deserializer(),
                    topics.calibrationBatches.name(), model.id(), checkpoint.config().vocabSize(), config.getInt("seq.len"),
                    EnumSet.allOf(Criterion.class));
            recovery = new PrunerRecovery(recoverySettings, new RecoveryWindows(bootstrap, topics, batches,
                    recoverySettings.readTimeoutMillis()), meters, progress);
            if (crashAtRecoveryStep > 0) {
                recovery.testListener = new ai.hfprune.engine.recover.RecoveryListener() {
                    @Override
                    public void step(int step, int total, double loss) {
                        if (step == crashAtRecoveryStep) {
                            throw new Error("a crash at recovery step " + step + " (test)"); // not a RuntimeException: no FAILED result
                        }
                    }
                };
            }
        }
        Map<String, Object> p = ClientConfigs.transactional(bootstrap, prefix + "pruner-" + config.instanceId() + "-producer",
                prefix + "pruner-" + config.instanceId());
        producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
        new KafkaClientMetrics(consumer).bindTo(meters);
        new KafkaClientMetrics(producer).bindTo(meters);
        producer.initTransactions();
        consumer.subscribe(List.of(topics.pruneTriggers.name()));
        running = true;
        running();
        thread = new Thread(this::loop, "hfprune-pruner");
        thread.start();
    }

    private void loop() {
        try {
            while (running) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<byte[], byte[]> record : records) {
                    List<ProducerRecord<byte[], byte[]>> answer = handle(record); // slow: outside the transaction's timeout
                    producer.beginTransaction();
                    for (ProducerRecord<byte[], byte[]> out : answer) {
                        producer.send(out);
                    }
                    producer.sendOffsetsToTransaction(Map.of(new TopicPartition(record.topic(), record.partition()),
                            new OffsetAndMetadata(record.offset() + 1)), consumer.groupMetadata());
                    producer.commitTransaction();
                }
            }
        } catch (WakeupException e) {
            // stop() was called
        } catch (RuntimeException | Error e) {
            failed(e); // logs it
        } finally {
            running = false;
        }
    }

    /** The records that answer one trigger: a result, or a dead letter. */
    List<ProducerRecord<byte[], byte[]>> handle(ConsumerRecord<byte[], byte[]> record) {
        PruneTrigger trigger;
        try {
            trigger = topics.pruneTriggers.valueSerde().deserializer().deserialize(record.topic(), record.value());
            if (!model.id().equals(trigger.getModel())) {
                throw new HfpruneException("model " + Keys.model(trigger.getModel()) + " is not the model this pruner serves ("
                        + model.key() + ")");
            }
            Criterion.parse(trigger.getCriterion());
        } catch (SerializationException | HfpruneException e) {
            meters.counter("hfprune_dead_letters", "service", "pruner", "instance", config.instanceId()).increment();
            return List.of(DeadLetters.of(topics.deadLetters.name(), record, e.getMessage(), "pruner"));
        }
        PruneResult result = prune(trigger);
        String key = Keys.modelCriterion(trigger.getModel(), trigger.getCriterion());
        meters.counter("hfprune_prune_results", "status", result.getStatus().name()).increment();
        return List.of(new ProducerRecord<>(topics.pruneResults.name(), key.getBytes(java.nio.charset.StandardCharsets.UTF_8),
                topics.pruneResults.valueSerde().serializer().serialize(topics.pruneResults.name(), result)));
    }

    private PruneResult prune(PruneTrigger trigger) {
        String key = Keys.modelCriterion(trigger.getModel(), trigger.getCriterion());
        PruneResult.Builder result = PruneResult.newBuilder().setModel(trigger.getModel()).setCriterion(trigger.getCriterion())
                .setVersion(trigger.getVersion()).setTokens(trigger.getSnapshot().getTokens())
                .setBatches(trigger.getSnapshot().getBatches()).setMlpRatio(options.mlpRatio())
                .setAttnRatio(options.attnRatio()).setAllocation(options.allocation().id())
                .setKept(List.of()).setParamsBefore(ParameterCount.of(checkpoint.weights())).setParamsAfter(0)
                .setMetrics(new HashMap<>()).setKeptChanged(1.0).setOutputPath("").setError("")
                .setCompensation(compensation.id()).setStatsTokens(0);
        try {
            GramStats stats = compensation.usesStats() ? statsReader.read(trigger) : null; // first: fails fast
            result.setStatsTokens(stats == null ? 0 : stats.tokens())
                    .setOutputErrorsWeighed(compensation == Compensation.OBS && stats.hasSensitivity());
            Scores scores = Finalizer.finalize(partial(trigger), dense, 0);
            PrunedModel pruned = Pruner.prune(checkpoint, scores, options);
            pruned = compensation.apply(checkpoint.config(), checkpoint.weights(), pruned, stats, damping);
            List<LayerKept> kept = KeptSets.of(pruned.plan());
            double changed = KeptSets.changed(previousKept.get(key), kept);
            long statsTokens = stats == null ? 0 : stats.tokens();
            boolean sameStats = statsTokens == previousStatsTokens.getOrDefault(key, -1L) || stats == null;
            PrunerRecovery.Windows recoveryWindows = recovery == null ? null : recovery.windows();
            int recoveryCount = recoveryWindows == null ? 0 : recoveryWindows.count();
            boolean sameRecovery = recoveryCount == previousRecoveryWindows.getOrDefault(key, -1) || recovery == null;
            result.setKept(kept).setKeptChanged(changed).setParamsAfter(ParameterCount.of(pruned.weights()));
            boolean unchanged = changed == 0.0 && sameStats && sameRecovery && previousMetrics.containsKey(key);
            PrunerRecovery.Recovered recovered = null;
            if (recovery != null && !unchanged) {
                recovered = recovery.recover(dense, pruned, trigger, recoveryWindows);
                pruned = recovered.model();
            }
            Map<String, Double> metrics = unchanged ? previousMetrics.get(key) : evaluate(pruned, recovered);
            result.setMetrics(metrics);
            if (unchanged) {
                result.setStatus(PruneStatus.UNCHANGED).setOutputPath(previousPath.getOrDefault(key, ""));
            } else {
                Path dir = VersionPaths.of(outputRoot, trigger.getModel().getName(), trigger.getCriterion(), trigger.getVersion());
                if (!Files.exists(dir)) { // a trigger delivered again after a crash finds its version written
                    PruneReport report = PruneReport.of(checkpoint, scores, config.getInt("seq.len"), pruned);
                    report.setCompensation(compensation, damping, stats);
                    if (recovered != null) {
                        report.setRecovery(recovered.result(), recoverySettings.options(), recovered.trainWindows(),
                                recovered.heldOutWindows());
                    }
                    VersionIndex.annotate(report, trigger, metrics); // before saving: report.html shows them
                    ModelExport.save(checkpoint, pruned, report, dir, export, n -> { });
                    VersionIndex.update(dir.getParent());
                }
                result.setStatus(PruneStatus.WRITTEN).setOutputPath(dir.toString());
                previousPath.put(key, dir.toString());
            }
            previousKept.put(key, kept);
            previousStatsTokens.put(key, statsTokens);
            previousRecoveryWindows.put(key, recoveryCount);
            previousMetrics.put(key, metrics);
            Map<String, Double> shown = new HashMap<>(metrics);
            shown.put("parameters", (double) result.getParamsAfter());
            shown.put("version", (double) trigger.getVersion());
            gauges(key, trigger).forEach((name, value) -> value.set(shown.getOrDefault(name, Double.NaN)));
        } catch (RuntimeException e) {
            LOG.warn("pruning {} version {} failed: {}", key, trigger.getVersion(), e.toString());
            result.setStatus(PruneStatus.FAILED).setError(String.valueOf(e.getMessage()));
        }
        return result.build();
    }

    /** The snapshot's sums as the engine's partial: the same numbers `hfprune score` accumulates. */
    static Partial partial(PruneTrigger trigger) {
        CoverageSnapshot s = trigger.getSnapshot();
        double[][] mlp = new double[s.getLayers().size()][];
        double[][] heads = new double[s.getLayers().size()][];
        for (LayerScores layer : s.getLayers()) {
            mlp[layer.getLayer()] = layer.getMlp().stream().mapToDouble(Double::doubleValue).toArray();
            heads[layer.getLayer()] = layer.getHeads().stream().mapToDouble(Double::doubleValue).toArray();
        }
        return new Partial(Criterion.parse(trigger.getCriterion()), s.getWindows(), s.getTokens(), mlp, heads);
    }

    /** Held-out metrics against the dense model, with what recovery did (its own held-out KL) when it ran. */
    private Map<String, Double> evaluate(PrunedModel pruned, PrunerRecovery.Recovered recovered) {
        try (LlamaModel model = LlamaModel.load(pruned.config(), pruned.weights(), dense.manager().getDevice(), dense.dataType())) {
            WindowMetrics m = Evaluator.evaluate(model, dense, evalWindows, config.getInt("batch.windows"), n -> { });
            Map<String, Double> out = new HashMap<>();
            out.put("perplexity", m.perplexity().perplexity());
            out.put("dense_perplexity", densePerplexity);
            out.put("kl", m.fidelity().kl());
            out.put("top1", m.fidelity().top1());
            out.put("eval_tokens", (double) m.perplexity().tokens());
            if (recovered != null) {
                out.put("recover_kl_before", recovered.result().heldOutKlBefore());
                out.put("recover_kl_after", recovered.result().heldOutKlAfter());
                out.put("recover_steps_run", (double) recovered.result().stepsRun());
                out.put("recover_best_step", (double) recovered.result().bestStep());
                out.put("recover_train_windows", (double) recovered.trainWindows());
                out.put("recover_held_out_windows", (double) recovered.heldOutWindows());
            }
            return out;
        }
    }

    private Map<String, AtomicReference<Double>> gauges(String key, PruneTrigger trigger) {
        return gauges.computeIfAbsent(key, k -> {
            Map<String, AtomicReference<Double>> g = new HashMap<>();
            Tags tags = Tags.of("model", trigger.getModel().getName(), "criterion", trigger.getCriterion());
            for (String name : List.of("perplexity", "kl", "top1", "parameters", "version")) {
                AtomicReference<Double> value = new AtomicReference<>(Double.NaN);
                // held strongly, as PrunerRecovery's: a weakly held value reads NaN once this service is collected
                Gauge.builder("hfprune_prune_" + name, value, AtomicReference::get).tags(tags).strongReference(true)
                        .register(meters);
                g.put(name, value);
            }
            return g;
        });
    }

    /** Tests: before {@link #start}, make recovery throw at this step, as a process killed mid-recovery stops. */
    void crashDuringRecoveryForTest(int step) {
        crashAtRecoveryStep = step;
    }

    public boolean isRunning() {
        return running;
    }

    @Override
    public String name() {
        return "pruner " + config.instanceId();
    }

    /** Stops the loop (a version being made is finished first, within {@code timeout}) and closes the clients. Idempotent. */
    @Override
    public synchronized boolean stop(Duration timeout) {
        running = false;
        if (consumer != null) {
            consumer.wakeup();
        }
        boolean ended = true;
        if (thread != null) {
            try {
                thread.join(timeout.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            ended = !thread.isAlive();
        }
        if (consumer != null) {
            consumer.close();
            consumer = null;
        }
        if (producer != null) {
            producer.close(Duration.ofSeconds(10));
            producer = null;
        }
        if (dense != null) {
            dense.close();
            dense = null;
        }
        stopped();
        return ended;
    }
}
