package ai.hfprune.pipeline.common;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.importance.ScoringMemory;
import ai.hfprune.engine.importance.ScoringPrecision;
import ai.hfprune.engine.model.CheckpointFiles;
import ai.hfprune.engine.prune.Allocation;
import ai.hfprune.engine.prune.PruneOptions;

import java.io.IOException;
import java.io.Reader;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

/**
 * Every setting of the pipeline, in one place. A setting comes from (first that has it): a command-line flag,
 * an environment variable ({@code HFPRUNE_} + the key in upper case with dots as underscores, e.g.
 * {@code HFPRUNE_COVERAGE_MIN_TOKENS}), a properties file, or the default below.
 */
public final class PipelineConfig {

    /** Keys with their defaults and meaning; the README's table is made from this. */
    public static final Map<String, String[]> SETTINGS = new LinkedHashMap<>();

    static {
        setting("bootstrap.servers", "", "Kafka bootstrap servers; empty: the embedded broker (run only)");
        setting("topic.prefix", "hfprune.", "prefix of every topic name");
        setting("topic.partitions", "4", "partitions of each topic created on start");
        setting("topic.replication", "1", "replication factor of each topic created on start");
        setting("schema.registry.url", "mock://hfprune", "mock://SCOPE (in memory, one JVM) or the URL of a Confluent-compatible registry");
        setting("model", "", "GGUF file or Hugging Face directory; empty: stories260K from the assets");
        setting("criteria", "entropy", "comma list of criteria the scorers compute (entropy, ce, activation, magnitude, random)");
        setting("seq.len", "128", "tokens per calibration window, T");
        setting("batch.windows", "8", "windows per TokenBatch, B");
        setting("data", "", "comma list of .txt/.jsonl files or folders; empty: TinyStories train-head-2MiB.txt from the assets");
        setting("max.windows", "64", "windows the sampler sends from files (0: all)");
        setting("sampler.rate.batches.per.second", "0", "rate limit of the sampler (0: none)");
        setting("sampler.jsonl.field", "text", "the text field of .jsonl documents");
        setting("coverage.min.tokens", "8192", "first prune trigger once this many tokens are aggregated");
        setting("coverage.every.tokens", "8192", "a further trigger every this many more tokens");
        setting("prune.mlp.ratio", "0.2", "fraction of MLP neurons removed");
        setting("prune.attn.ratio", "0", "fraction of attention removed, in whole KV groups");
        setting("prune.allocation", "uniform", "uniform or global");
        setting("prune.compensate", "lstsq",
                "none, lstsq (refit the kept columns of down_proj and o_proj by least squares on the calibration Gram statistics) or obs (choose each layer's kept units by the refit's error, then refit); scorers compute the statistics unless none");
        setting("prune.damping", "0.001", "damping of the refit, relative to the mean kept Gram diagonal");
        setting("prune.recover.steps", "0",
                "after the cut and the refit, at most this many Adam steps of self-distillation towards the dense model (0: none)");
        setting("prune.recover.lr", "", "peak learning rate of recovery, used as given; empty: 1e-3 for all weights, 1e-2 for LoRA, divided by 10 up to twice while no held-out evaluation beats the start");
        setting("prune.recover.lora.rank", "0", "0: recovery trains every weight; R > 0: rank-R LoRA adapters, merged at the end");
        setting("prune.recover.windows", "256",
                "training windows of recovery: the first of the calibration stream (calibration-batches, in the sampler's order)");
        setting("prune.recover.held.out", "32",
                "windows after those, held out to stop recovery early (a stream with fewer has both scaled down)");
        setting("pruner.recover.read.timeout.ms", "120000", "how long the pruner reads calibration-batches for recovery's windows");
        setting("prune.format", "hf", "what each version is written as: hf, gguf (model.gguf for llama.cpp) or both");
        setting("prune.gguf.type", "f32", "tensor type of model.gguf's matrices: f32, f16 or q8_0");
        setting("stats.chunk.bytes", String.valueOf(4 << 20),
                "most bytes of Gram values in one stats record (scorers' stats-partials, the aggregator's calibration-stats); a record holds at least one row");
        setting("record.max.bytes", String.valueOf(Topics.MAX_RECORD_BYTES),
                "the largest coverage snapshot or prune trigger (with every layer's sums) the aggregator writes; a version whose snapshot is larger is refused with a FAILED result on prune-results; at most the topics' limit of 64 MiB");
        setting("scorer.stats.flush.tokens", String.valueOf(1 << 18),
                "with statistics: a scorer's transaction takes batches until this many tokens (or an idle poll, a stop, a rebalance), and sends the group's statistics once");
        setting("pruner.stats.timeout.ms", "120000", "how long the pruner reads calibration-stats for a version's statistics before the version fails");
        setting("output.root", "pruned", "folder under which the pruner writes model versions");
        setting("eval.data", "", "held-out text for the pruner's evaluation; empty: TinyStories valid-hf-head.txt");
        setting("eval.max.windows", "16", "evaluation windows (of seq.len tokens)");
        setting("state.dir", "", "Kafka Streams state folder; empty: a temporary folder, deleted when the aggregator stops");
        setting("model.sha256", "",
                "the model's identity, declared: the aggregator and the sampler take it without reading a weight byte even where no"
                + " digest is cached; the scorers and the pruner check it against the weights and refuse to start on a mismatch;"
                + " empty: every process learns it from the digest cache or the weights");
        setting("aggregator.state.store", "auto",
                "where the aggregator keeps its state: memory (on the heap; a restart after kill -9 restores it from the changelogs"
                + " without wiping and reopening local stores: faster), rocksdb (on disk, any size), or auto: memory when the state's"
                + " bound for the configured models fits in a quarter of the heap, else rocksdb (see Fast recovery)");
        setting("scorer.memory", "auto",
                "how a scorer's backward pass gets its activations: store (every layer's pass kept from the forward pass: faster),"
                + " recompute (each layer recomputed from its input: memory grows with neither depth nor vocabulary), or auto:"
                + " store where 1.5 x its estimated memory fits in half of the memory available, else recompute; the scores are the same");
        setting("scorer.dtype", "float32",
                "what a scorer computes the decoder layers in: float32, or bf16 (bfloat16, as HFPrune's reference code: faster"
                + " where the CPU has AVX-512 BF16 or AMX, scores within about 0.5% of float32's)");
        setting("scorer.commit.interval.ms", "1000",
                "a scorer commits the batches it scores in this long (at most one poll's, 8) in one transaction; a crash redoes at most these");
        setting("aggregator.commit.interval.ms", "1000",
                "Kafka Streams commit interval of the aggregator: each commit is a transaction; longer is cheaper, triggers wait up to this long");
        setting("group.session.timeout.ms", "30000",
                "session timeout of the scorers' and the aggregator's static group membership: a member restarted with its instance.id within it gets its partitions back at once; one not restarted loses them after it (see Fast recovery)");
        setting("hanging.transaction.ms", "600000",
                "the aggregator reports an open transaction on a pipeline topic whose producer wrote nothing for this long as hanging"
                + " (a WARN line, hfprune_hanging_transactions): longer than any transaction of the pipeline (a scorer's with statistics"
                + " may take 5 min); 0: no check (see Chaos)");
        setting("metrics.port", "0", "port of /metrics (Prometheus); 0: an ephemeral port, -1: off");
        setting("metrics.bind.address", "127.0.0.1",
                "address the HTTP endpoints (/metrics, the aggregator's /coverage and /scores) listen on; 0.0.0.0: every interface (containers)");
        setting("instance.id", "",
                "this process's id (transactional ids, static group membership, metrics tags): give a restarted process the id it had; empty: host-pid");
    }

    private static void setting(String key, String defaultValue, String doc) {
        SETTINGS.put(key, new String[] {defaultValue, doc});
    }

    private final Map<String, String> values;

    private PipelineConfig(Map<String, String> values) {
        this.values = values;
    }

    /** Defaults only. */
    public static PipelineConfig defaults() {
        return load(Map.of(), null, Map.of());
    }

    /**
     * @param flags          settings given on the command line (highest precedence)
     * @param propertiesFile may be null
     * @param env            usually {@code System.getenv()}
     */
    public static PipelineConfig load(Map<String, String> flags, Path propertiesFile, Map<String, String> env) {
        Map<String, String> values = new TreeMap<>();
        SETTINGS.forEach((k, v) -> values.put(k, v[0]));
        if (propertiesFile != null) {
            Properties p = new Properties();
            try (Reader r = Files.newBufferedReader(propertiesFile)) {
                p.load(r);
            } catch (IOException e) {
                throw new HfpruneException("cannot read properties file " + propertiesFile + ": " + e.getMessage(), e);
            }
            p.stringPropertyNames().forEach(k -> values.put(known(k, propertiesFile.toString()), p.getProperty(k)));
        }
        for (String key : SETTINGS.keySet()) {
            String fromEnv = env.get(envName(key));
            if (fromEnv != null) {
                values.put(key, fromEnv);
            }
        }
        flags.forEach((k, v) -> values.put(known(k, "the command line"), v));
        return new PipelineConfig(values);
    }

    public static String envName(String key) {
        return "HFPRUNE_" + key.toUpperCase(Locale.ROOT).replace('.', '_');
    }

    private static String known(String key, String where) {
        if (!SETTINGS.containsKey(key)) {
            throw new HfpruneException("unknown setting '" + key + "' in " + where + " (known: " + String.join(", ", SETTINGS.keySet()) + ")");
        }
        return key;
    }

    /** A copy with some settings replaced. */
    public PipelineConfig with(String key, String value) {
        Map<String, String> copy = new TreeMap<>(values);
        copy.put(known(key, "code"), value);
        return new PipelineConfig(copy);
    }

    public String get(String key) {
        return values.get(known(key, "code"));
    }

    public int getInt(String key) {
        try {
            return Integer.parseInt(get(key).trim());
        } catch (NumberFormatException e) {
            throw new HfpruneException("setting " + key + " must be a whole number, got '" + get(key) + "'");
        }
    }

    public long getLong(String key) {
        try {
            return Long.parseLong(get(key).trim());
        } catch (NumberFormatException e) {
            throw new HfpruneException("setting " + key + " must be a whole number, got '" + get(key) + "'");
        }
    }

    public double getDouble(String key) {
        try {
            return Double.parseDouble(get(key).trim());
        } catch (NumberFormatException e) {
            throw new HfpruneException("setting " + key + " must be a number, got '" + get(key) + "'");
        }
    }

    /**
     * The values of {@code prune.compensate}: the ids of the engine's {@code Compensation}, which the scorer and the
     * pruner parse. Named here so that every service (the aggregator and the sampler have no engine) refuses a typo on
     * start; a test beside the engine (PipelineConfigEngineTest) keeps the two lists equal.
     */
    public static final List<String> COMPENSATIONS = List.of("none", "lstsq", "obs");

    /** {@code prune.compensate}: one setting drives both ends (scorers compute the statistics, the pruner refits). */
    public String compensation() {
        String id = get("prune.compensate").strip();
        for (String c : COMPENSATIONS) {
            if (c.equalsIgnoreCase(id)) {
                return c;
            }
        }
        throw new HfpruneException("setting prune.compensate: unknown compensation '" + get("prune.compensate")
                + "' (choose one of " + String.join(", ", COMPENSATIONS) + ")");
    }

    public double damping() {
        double d = getDouble("prune.damping");
        if (!(d >= 0) || Double.isInfinite(d)) {
            throw new HfpruneException("setting prune.damping must be a finite number ≥ 0, got '" + get("prune.damping") + "'");
        }
        return d;
    }

    /** {@code stats.chunk.bytes}: between 1 KiB and half the record limit, so a chunk with its header always fits a record. */
    public int statsChunkBytes() {
        long b = getLong("stats.chunk.bytes");
        if (b < 1024 || b > Topics.MAX_RECORD_BYTES / 2) {
            throw new HfpruneException("setting stats.chunk.bytes must be between 1024 and " + Topics.MAX_RECORD_BYTES / 2 + ", got " + b);
        }
        return (int) b;
    }

    /** {@code record.max.bytes}: between 1 KiB and the topics' record limit. */
    public int recordMaxBytes() {
        long b = getLong("record.max.bytes");
        if (b < 1024 || b > Topics.MAX_RECORD_BYTES) {
            throw new HfpruneException("setting record.max.bytes must be between 1024 and " + Topics.MAX_RECORD_BYTES + ", got " + b);
        }
        return (int) b;
    }

    /** {@code group.session.timeout.ms}: within the broker's default bounds (6 s to 30 min). */
    public int sessionTimeoutMillis() {
        long ms = getLong("group.session.timeout.ms");
        if (ms < 6_000 || ms > 1_800_000) {
            throw new HfpruneException("setting group.session.timeout.ms must be between 6000 and 1800000 (the broker's bounds), got " + ms);
        }
        return (int) ms;
    }

    /** {@code hanging.transaction.ms}; 0 turns the check off. */
    public long hangingTransactionMillis() {
        long ms = getLong("hanging.transaction.ms");
        if (ms < 0) {
            throw new HfpruneException("setting hanging.transaction.ms must be at least 0 (0: no check), got " + ms);
        }
        return ms;
    }

    public long statsFlushTokens() {
        return positive("scorer.stats.flush.tokens");
    }

    public long prunerStatsTimeoutMillis() {
        return positive("pruner.stats.timeout.ms");
    }

    private long positive(String key) {
        long v = getLong(key);
        if (v < 1) {
            throw new HfpruneException("setting " + key + " must be at least 1, got " + v);
        }
        return v;
    }

    /**
     * The cut the pruner makes: {@code prune.mlp.ratio}, {@code prune.attn.ratio} and {@code prune.allocation}, each
     * bad value refused naming its setting. Whether the attention ratio removes whole KV groups depends on the model
     * ({@code PrunerService.checkSettings}).
     */
    public PruneOptions pruneOptions() {
        double mlp = fraction("prune.mlp.ratio");
        double attn = fraction("prune.attn.ratio");
        Allocation allocation;
        try {
            allocation = Allocation.parse(get("prune.allocation").strip());
        } catch (HfpruneException e) {
            throw new HfpruneException("setting prune.allocation: " + e.getMessage(), e);
        }
        return PruneOptions.uniform(mlp, attn).withAllocation(allocation);
    }

    private double fraction(String key) {
        double r = getDouble(key);
        if (!(r >= 0 && r < 1)) { // also refuses NaN
            throw new HfpruneException("setting " + key + " must be in [0, 1) (the fraction removed), got '" + get(key) + "'");
        }
        return r;
    }

    /**
     * Checks the settings of the cut ({@code prune.*}), the compensation and its statistics; every service and
     * {@code run} call it on start, so that a typo fails before any work rather than as a FAILED result at the first
     * trigger.
     */
    public PipelineConfig validate() {
        pruneOptions();
        compensation();
        damping();
        statsChunkBytes();
        recordMaxBytes();
        sessionTimeoutMillis();
        hangingTransactionMillis();
        statsFlushTokens();
        prunerStatsTimeoutMillis();
        aggregatorStateStore();
        scorerMemory();
        scorerPrecision();
        if (!get("model.sha256").isBlank()) {
            CheckpointFiles.checkedDigest(get("model.sha256"));
        }
        return this;
    }

    /** {@code scorer.memory}: auto, recompute or store. */
    public ScoringMemory scorerMemory() {
        try {
            return ScoringMemory.parse(get("scorer.memory"));
        } catch (HfpruneException e) {
            throw new HfpruneException("setting scorer.memory: " + e.getMessage(), e);
        }
    }

    /** {@code scorer.dtype}: float32 or bf16. */
    public ScoringPrecision scorerPrecision() {
        try {
            return ScoringPrecision.parse(get("scorer.dtype"));
        } catch (HfpruneException e) {
            throw new HfpruneException("setting scorer.dtype: " + e.getMessage(), e);
        }
    }

    /** {@code aggregator.state.store}: auto, memory or rocksdb. */
    public String aggregatorStateStore() {
        String store = get("aggregator.state.store").strip();
        if (!List.of("auto", "memory", "rocksdb").contains(store)) {
            throw new HfpruneException("setting aggregator.state.store: '" + store + "' is none of auto, memory, rocksdb");
        }
        return store;
    }

    /**
     * {@code metrics.bind.address}: loopback by default, so that a local run shows its metrics and stores to no one
     * else on the network; containers listen on every interface for Prometheus and the health checks.
     */
    public InetAddress metricsBindAddress() {
        String address = get("metrics.bind.address").strip();
        if (address.isEmpty()) {
            throw new HfpruneException("setting metrics.bind.address is empty (127.0.0.1: this machine only, 0.0.0.0: every interface)");
        }
        try {
            return InetAddress.getByName(address);
        } catch (UnknownHostException e) {
            throw new HfpruneException("setting metrics.bind.address: '" + address + "' is not an address of this machine's"
                    + " interfaces or a host name that resolves (127.0.0.1: this machine only, 0.0.0.0: every interface)");
        }
    }

    /** {@code instance.id}, or host-pid when it is empty: tags metrics and names transactional ids. */
    public String instanceId() {
        String id = get("instance.id");
        if (!id.isBlank()) {
            return id.strip();
        }
        String host;
        try {
            host = java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.io.IOException e) {
            host = "localhost";
        }
        return host + "-" + ProcessHandle.current().pid();
    }

    public Map<String, String> asMap() {
        return Map.copyOf(values);
    }

    @Override
    public String toString() {
        return values.toString();
    }
}
