package ai.hfprune.pipeline.aggregator;

import ai.hfprune.engine.io.FileTrees;
import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.HangingTransactionWatch;
import ai.hfprune.pipeline.common.MetricsServer;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.ServiceBase;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.LayerScores;
import ai.hfprune.schemas.Structure;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.kafka.KafkaStreamsMetrics;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The aggregator service: the {@link AggregatorTopology} on Kafka Streams with exactly-once processing, and
 * interactive queries of its stores over HTTP ({@code /coverage}, {@code /scores?key=model|criterion&layer=L}).
 *
 * <p>Health: RUNNING once Kafka Streams runs; FAILED when a stream thread dies (the cause, from the uncaught-exception
 * handler, which shuts the client down) or the client goes to ERROR or shuts down without {@link #stop}.
 */
public final class AggregatorService extends ServiceBase {

    private static final Logger LOG = LoggerFactory.getLogger(AggregatorService.class);

    private final PipelineConfig config;
    private final Topics topics;
    private final List<ModelInfo> models;
    private final MeterRegistry meters;
    private KafkaStreams streams;
    private KafkaStreamsMetrics streamsMetrics;
    /** The state folder this service created (no {@code state.dir} setting), deleted on {@link #close}; else null. */
    private Path temporaryStateDir;
    /** What killed a stream thread, for the FAILED health. */
    private final AtomicReference<Throwable> streamsFailure = new AtomicReference<>();
    private volatile boolean stopping;
    private HangingTransactionWatch hangingTransactions;

    /** @param models the models whose partials are accepted; others go to the dead-letter topic */
    public AggregatorService(PipelineConfig config, Topics topics, List<ModelInfo> models, MeterRegistry meters) {
        this.config = config;
        this.topics = topics;
        this.models = models;
        this.meters = meters;
    }

    @Override
    public String name() {
        return "aggregator " + config.instanceId();
    }

    @Override
    public void start() {
        config.validate();
        try {
            String applicationId = config.get("topic.prefix") + "aggregator";
            Properties props = ClientConfigs.streams(config.get("bootstrap.servers"), applicationId);
            props.putAll(streamsConfig(config));
            props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir());
            props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, config.getInt("topic.replication"));
            props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
            props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
            // under exactly_once_v2 every commit is a transaction: Kafka's 100 ms default cost this 2-core machine a
            // tenth of a pipeline run's CPU (bench pipeline); triggers come minutes apart, so a second of latency is free
            props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, config.getLong("aggregator.commit.interval.ms"));
            StateStores.Choice stores = StateStores.choose(config, models, Runtime.getRuntime().maxMemory());
            LOG.info("aggregator {}: state in {} ({}; bound {} bytes)", config.instanceId(), stores.inMemory() ? "memory" : "RocksDB",
                    stores.reason(), stores.boundBytes());
            // RocksDB stores buffer a commit interval's writes and apply them when the changelog's transaction commits
            // (KIP-892, Kafka Streams 4.4): after a kill -9 they are no longer counted as corrupted, wiped and restored
            // from their changelogs, which for a large model's Gram sums would be gigabytes (README, Fast recovery)
            props.put(StreamsConfig.TRANSACTIONAL_STATE_STORES_CONFIG, !stores.inMemory());
            streams = new KafkaStreams(AggregatorTopology.build(topics, models, new Thresholds(config.getLong("coverage.min.tokens"),
                    config.getLong("coverage.every.tokens")), config.statsChunkBytes(), config.recordMaxBytes(), meters, config.instanceId(),
                    stores.supplier()), props, new StableTransactionalIds(applicationId, config.instanceId()));
            streamsMetrics = new KafkaStreamsMetrics(streams);
            streamsMetrics.bindTo(meters);
            streams.setUncaughtExceptionHandler(e -> {
                streamsFailure.compareAndSet(null, e);
                return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            streams.setStateListener((now, before) -> onStreamsState(now));
            streams.start();
            awaitRunning(Duration.ofSeconds(120));
            long hangingMs = config.hangingTransactionMillis();
            if (hangingMs > 0) { // one service is enough to watch the pipeline's topics: the one that reads most of them
                hangingTransactions = new HangingTransactionWatch(config.get("bootstrap.servers"), config.get("topic.prefix"),
                        Duration.ofMillis(hangingMs), meters, "aggregator").start(Duration.ofMillis(Math.min(60_000, hangingMs)));
            }
        } catch (RuntimeException e) {
            close(); // a service that did not start is never closed by its caller: its temporary state must go now
            throw e;
        }
    }

    /**
     * The settings of its own on top of {@link ClientConfigs#streams}: static membership of the main consumer
     * ({@code group.instance.id} from {@code instance.id}), so a restarted aggregator takes its tasks back without a
     * rebalance.
     */
    public static Map<String, Object> streamsConfig(PipelineConfig config) {
        Map<String, Object> s = new LinkedHashMap<>();
        ClientConfigs.staticMember(config.instanceId(), config.sessionTimeoutMillis())
                .forEach((k, v) -> s.put(StreamsConfig.mainConsumerPrefix(k), v));
        return s;
    }

    /** Kafka Streams' state as the service's health. */
    private void onStreamsState(KafkaStreams.State now) {
        if (now == KafkaStreams.State.RUNNING) {
            running();
        } else if (now == KafkaStreams.State.ERROR
                || (!stopping && (now == KafkaStreams.State.PENDING_SHUTDOWN || now == KafkaStreams.State.NOT_RUNNING))) {
            Throwable cause = streamsFailure.get();
            failed(cause != null ? cause : new IllegalStateException("Kafka Streams went to " + now + " by itself"));
        }
    }

    private String stateDir() {
        String dir = config.get("state.dir");
        if (!dir.isBlank()) {
            return dir;
        }
        try {
            // not deleteOnExit: it deletes only empty folders, and Streams fills this one (stores, checkpoints, a lock)
            temporaryStateDir = Files.createTempDirectory("hfprune-aggregator-");
            return temporaryStateDir.toString();
        } catch (IOException e) {
            throw new IllegalStateException("cannot create a state folder: " + e.getMessage(), e);
        }
    }

    private void awaitRunning(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (streams.state() != KafkaStreams.State.RUNNING) {
            if (streams.state() == KafkaStreams.State.ERROR || streams.state() == KafkaStreams.State.NOT_RUNNING
                    || System.nanoTime() > deadline) {
                throw new IllegalStateException("the aggregator did not start: Kafka Streams is " + streams.state());
            }
            sleep(50);
        }
    }

    /** Coverage of every model|criterion this instance holds. */
    public Map<String, CoverageSnapshot> coverage() {
        Map<String, CoverageSnapshot> out = new LinkedHashMap<>();
        try (KeyValueIterator<String, CoverageSnapshot> it = this.<CoverageSnapshot>store(PartialAggregator.COVERAGE).all()) {
            while (it.hasNext()) {
                KeyValue<String, CoverageSnapshot> kv = it.next();
                out.put(kv.key, kv.value);
            }
        }
        return out;
    }

    /** The current sums of one layer of a model|criterion, if this instance holds them. */
    public Optional<LayerScores> scores(String modelCriterion, int layer) {
        ReadOnlyKeyValueStore<String, double[]> sums = store(PartialAggregator.SUMS);
        double[] mlp = sums.get(modelCriterion + "|" + layer + "|" + Structure.MLP);
        double[] heads = sums.get(modelCriterion + "|" + layer + "|" + Structure.HEADS);
        if (mlp == null && heads == null) {
            return Optional.empty();
        }
        return Optional.of(new LayerScores(layer, PartialAggregator.boxed(mlp), PartialAggregator.boxed(heads)));
    }

    private <V> ReadOnlyKeyValueStore<String, V> store(String name) {
        for (int attempt = 0; ; attempt++) {
            try {
                return streams.store(StoreQueryParameters.fromNameAndType(name, QueryableStoreTypes.<String, V>keyValueStore()));
            } catch (InvalidStateStoreException e) {
                if (attempt > 100) {
                    throw e; // still rebalancing after 5 s
                }
                sleep(50);
            }
        }
    }

    /** Serves {@code /coverage} and {@code /scores} as JSON on the process's HTTP server. */
    public void serveQueries(MetricsServer http) {
        ObjectMapper json = new ObjectMapper();
        http.handle("/coverage", exchange -> {
            ObjectNode root = json.createObjectNode();
            coverage().forEach((key, c) -> root.putObject(key)
                    .put("tokens", c.getTokens()).put("windows", c.getWindows()).put("batches", c.getBatches())
                    .put("pendingBatches", c.getPendingBatches()).put("layersComplete", c.getLayersComplete())
                    .put("numLayers", c.getNumLayers()).put("version", c.getVersion()));
            MetricsServer.respond(exchange, 200, "application/json", root.toPrettyString());
        });
        http.handle("/scores", exchange -> {
            Map<String, String> q = query(exchange.getRequestURI().getRawQuery());
            Optional<LayerScores> scores;
            try {
                scores = scores(q.getOrDefault("key", ""), Integer.parseInt(q.getOrDefault("layer", "-1")));
            } catch (NumberFormatException e) {
                scores = Optional.empty();
            }
            if (scores.isEmpty()) {
                MetricsServer.respond(exchange, 404, "application/json",
                        "{\"error\":\"no scores here for key=model@sha256|criterion and layer=L (see /coverage for keys)\"}");
                return;
            }
            ObjectNode root = json.createObjectNode().put("key", q.get("key")).put("layer", scores.get().getLayer());
            ArrayNode mlp = root.putArray("mlp");
            scores.get().getMlp().forEach(mlp::add);
            ArrayNode heads = root.putArray("heads");
            scores.get().getHeads().forEach(heads::add);
            MetricsServer.respond(exchange, 200, "application/json", root.toString());
        });
    }

    private static Map<String, String> query(String raw) {
        Map<String, String> out = new LinkedHashMap<>();
        if (raw != null) {
            for (String pair : raw.split("&")) {
                int eq = pair.indexOf('=');
                if (eq > 0) {
                    out.put(URLDecoder.decode(pair.substring(0, eq), StandardCharsets.UTF_8),
                            URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
                }
            }
        }
        return out;
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /** {@link #stop} with 30 s for Kafka Streams. */
    @Override
    public void close() {
        stop(Duration.ofSeconds(30));
    }

    /** Stops Kafka Streams and then deletes the temporary state folder, if this service made one. Idempotent. */
    @Override
    public synchronized boolean stop(Duration timeout) {
        stopping = true;
        boolean stopped = true;
        if (hangingTransactions != null) {
            hangingTransactions.close();
            hangingTransactions = null;
        }
        if (streams != null) {
            // leave the group: a stopped aggregator's tasks go to another one at once (a killed one's successor with the
            // same instance.id takes them back without a rebalance)
            stopped = streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                    .withTimeout(timeout));
            streams = null;
        }
        if (streamsMetrics != null) {
            streamsMetrics.close();
            streamsMetrics = null;
        }
        if (temporaryStateDir != null) {
            // while Streams' threads still run they may write there: then the folder stays, and says so
            if (stopped && FileTrees.deleteQuietly(temporaryStateDir)) {
                temporaryStateDir = null;
            } else {
                LOG.warn("could not delete the aggregator's temporary state folder {}", temporaryStateDir);
            }
        }
        stopped();
        return stopped;
    }
}
