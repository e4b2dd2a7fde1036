package ai.hfprune.pipeline.embedded;

import ai.hfprune.engine.io.FileTrees;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.BindException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;

import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.common.utils.internals.Exit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A real, single-node Kafka broker running inside this JVM: KRaft combined mode
 * ({@code process.roles=broker,controller}), no Docker, no ZooKeeper.
 *
 * <p>Used by the embedded mode ({@code ./hfprune run}) and by tests. Every instance gets
 * <ul>
 *   <li>its own temporary log directory (formatted like {@code kafka-storage format} does,
 *       with a fresh random cluster id), deleted again by {@link #close()} — or, from
 *       {@link #startPersistent}, a directory kept across restarts ({@link BrokerStorage});</li>
 *   <li>two free ports on 127.0.0.1, one for the {@code PLAINTEXT} client listener and one
 *       for the {@code CONTROLLER} listener (the static quorum voter list cannot use port 0,
 *       so the ports are picked up front; a lost race for a port is retried with new ports);</li>
 *   <li>a node id unique within the JVM (1, 2, 3, ...), so that several brokers started in one
 *       JVM do not collide on their {@code app-info} MBeans.</li>
 * </ul>
 * While any instance is starting or running, Kafka's fatal-fault exits ({@code Exit.halt(1)})
 * throw instead of ending the JVM (see {@code acquireExitGuard}); a bind failure during start
 * is therefore retried rather than fatal.
 * The settings allow exactly-once processing on one broker (replication factor 1 and
 * min ISR 1 for {@code __consumer_offsets}, {@code __transaction_state} and
 * {@code __share_group_state}), no initial rebalance delay, and {@code message.max.bytes}
 * of 64 MiB for large score snapshots (clients must raise {@code max.request.size} /
 * {@code max.partition.fetch.bytes} themselves to use it).
 *
 * <p>{@link #start()} returns only when the broker answers an Admin {@code describeCluster}
 * request with itself as a live node. {@link #close()} shuts down broker and controller,
 * waits for them, and deletes the directory; it is idempotent and is also run by a JVM
 * shutdown hook if the owner never calls it.
 *
 * <p>Logging: the broker logs through SLF4J. With slf4j-simple (the CLI, at {@code warn})
 * that goes to stderr; see {@link #quietBrokerLogging()} for what is turned down.
 */
public final class EmbeddedKafka implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedKafka.class);

    /** Message size limit of the broker (and thus default {@code max.message.bytes} of topics). */
    public static final int MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

    /** How long {@link #start()} waits for the broker to come up. */
    public static final Duration DEFAULT_STARTUP_TIMEOUT = Duration.ofSeconds(60);

    private static final String CONTROLLER_LISTENER = "CONTROLLER";
    private static final String CLIENT_LISTENER = "PLAINTEXT";
    private static final String HOST = "127.0.0.1";
    private static final int PORT_ATTEMPTS = 3;

    /** Configuration keys this class owns; overriding them would break the single-node setup. */
    private static final Set<String> MANAGED_KEYS = Set.of(
            "process.roles", "node.id", "controller.quorum.voters", "controller.quorum.bootstrap.servers",
            "controller.listener.names", "listeners", "advertised.listeners",
            "listener.security.protocol.map", "inter.broker.listener.name", "log.dirs", "log.dir",
            "metadata.log.dir");

    private static final AtomicInteger NEXT_NODE_ID = new AtomicInteger(1);

    /** Guards {@link #exitGuardUsers}: how many instances are starting or running in this JVM. */
    private static final Object EXIT_GUARD_LOCK = new Object();
    private static int exitGuardUsers;

    private final KafkaRaftServer server;
    private final BrokerStorage storage;
    private final String bootstrapServers;
    private final Thread shutdownHook;
    private final AtomicBoolean closed = new AtomicBoolean();

    private EmbeddedKafka(KafkaRaftServer server, BrokerStorage storage, String bootstrapServers) {
        this.server = server;
        this.storage = storage;
        this.bootstrapServers = bootstrapServers;
        this.shutdownHook = new Thread(this::close, "embedded-kafka-" + storage.nodeId() + "-shutdown");
    }

    /** Starts a broker with the default settings; see {@link #start(Map)}. */
    public static EmbeddedKafka start() {
        return start(Map.of());
    }

    /** Starts a broker, {@code overrides} replacing or adding broker settings; waits up to 60 s. */
    public static EmbeddedKafka start(Map<String, String> overrides) {
        return start(overrides, DEFAULT_STARTUP_TIMEOUT);
    }

    /**
     * Starts a broker and waits until it serves clients.
     *
     * @param overrides broker settings replacing or adding to the defaults; the listener,
     *                  quorum, node-id and log-directory settings are managed here and may not be overridden
     * @param timeout   how long to wait for the broker to become ready
     * @throws IllegalArgumentException if {@code overrides} touches a managed key
     * @throws IllegalStateException    if the broker cannot be formatted, started, or does not become ready in time
     */
    public static EmbeddedKafka start(Map<String, String> overrides, Duration timeout) {
        return start(overrides, timeout, EmbeddedKafka::freePorts);
    }

    /**
     * Starts a broker on a background thread, so that its start (about 1 s warm, but several
     * seconds for the first broker of a JVM, which loads and compiles the broker's classes) can
     * overlap other start-up work such as loading a model. The future fails with the exception
     * {@link #start(Map, Duration)} would throw.
     */
    public static CompletableFuture<EmbeddedKafka> startAsync(Map<String, String> overrides, Duration timeout) {
        Map<String, String> copy = Map.copyOf(overrides);
        CompletableFuture<EmbeddedKafka> future = new CompletableFuture<>();
        Thread starter = new Thread(() -> {
            try {
                future.complete(start(copy, timeout));
            } catch (Throwable t) {
                future.completeExceptionally(t);
            }
        }, "embedded-kafka-starter");
        starter.setDaemon(true);
        starter.start();
        return future;
    }

    /**
     * Starts a broker whose data survives it, in {@code dataDir} (created and formatted on first use; a broker
     * restarted on it, after a clean stop or a kill -9, is the same cluster with the same topics and offsets), with
     * its client listener on {@code clientPort} of 127.0.0.1 (0: a free port). {@link #close()} keeps the directory.
     * The controller port is chosen on first use and kept in the directory.
     *
     * @throws IllegalStateException if a port is taken, the directory is not a broker's, or the broker does not start
     */
    public static EmbeddedKafka startPersistent(Path dataDir, int clientPort, Map<String, String> overrides,
                                                Duration timeout) {
        checkOverrides(overrides);
        quietBrokerLogging();
        int[] free = freePorts(2);
        BrokerStorage storage = BrokerStorage.persistent(dataDir.toAbsolutePath(), NEXT_NODE_ID.getAndIncrement(), free[1]);
        try {
            return startOnce(storage, clientPort == 0 ? free[0] : clientPort, overrides,
                    System.nanoTime() + timeout.toNanos(), timeout);
        } catch (RetryableStartFailure e) {
            throw new IllegalStateException("the broker cannot listen on 127.0.0.1 port " + clientPort + " (clients) or "
                    + storage.controllerPort() + " (its controller, kept in " + dataDir + "): " + e.getCause().getMessage(),
                    e.getCause());
        }
    }

    /** As {@link #start(Map, Duration)}, with the port picker replaceable (tests of the port-race retry). */
    static EmbeddedKafka start(Map<String, String> overrides, Duration timeout, IntFunction<int[]> portPicker) {
        checkOverrides(overrides);
        quietBrokerLogging();
        long deadline = System.nanoTime() + timeout.toNanos();
        RuntimeException last = null;
        for (int attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
            int[] ports = portPicker.apply(2);
            BrokerStorage storage = BrokerStorage.temporary(NEXT_NODE_ID.getAndIncrement(), ports[1]);
            try {
                return startOnce(storage, ports[0], overrides, deadline, timeout);
            } catch (RetryableStartFailure e) {
                // Most likely another process grabbed one of our probed ports before the broker bound it.
                LOG.warn("Embedded Kafka start attempt {} of {} failed, retrying with new ports: {}",
                        attempt, PORT_ATTEMPTS, e.getCause().toString());
                last = new IllegalStateException("Embedded Kafka broker failed to start after " + attempt
                        + " attempts (ports taken, or a fatal fault; see the log above)", e.getCause());
            }
        }
        throw last;
    }

    private static void checkOverrides(Map<String, String> overrides) {
        for (String key : overrides.keySet()) {
            if (MANAGED_KEYS.contains(key)) {
                throw new IllegalArgumentException("EmbeddedKafka manages '" + key + "' itself; it cannot be overridden");
            }
        }
    }

    /** One start on {@code storage}; a temporary storage is deleted again if the start fails. */
    private static EmbeddedKafka startOnce(BrokerStorage storage, int clientPort, Map<String, String> overrides,
                                           long deadline, Duration timeout) {
        long t0 = System.nanoTime();
        int nodeId = storage.nodeId();
        KafkaRaftServer server = null;
        boolean started = false;
        acquireExitGuard();
        try {
            String logDir = storage.logDir().toString();
            Map<String, Object> props = brokerConfig(nodeId, clientPort, storage.controllerPort(), logDir, overrides);
            if (storage.persistent()) {
                // A restart after kill -9 finds its previous incarnation still registered with the controller (its own
                // metadata log), which answers DUPLICATE_BROKER_REGISTRATION until it has fenced that incarnation for
                // missing heartbeats, broker.session.timeout.ms later: 10 of the 12 s a restart took with the default
                // 9 s. The heartbeats go from this process to itself, so a shorter session only needs the process to
                // run; temporary brokers, never restarted on their data, keep Kafka's defaults.
                props.putIfAbsent("broker.heartbeat.interval.ms", "500");
                props.putIfAbsent("broker.session.timeout.ms", "3000");
            }

            storage.formatIfNeeded(CONTROLLER_LISTENER);

            KafkaConfig config = new KafkaConfig(props, false);
            server = new KafkaRaftServer(config, Time.SYSTEM);
            startup(server, nodeId, deadline, timeout);
            String bootstrap = HOST + ":" + clientPort;
            awaitReady(bootstrap, nodeId, deadline, timeout);
            EmbeddedKafka kafka = new EmbeddedKafka(server, storage, bootstrap);
            Runtime.getRuntime().addShutdownHook(kafka.shutdownHook);
            started = true;
            LOG.info("Embedded Kafka node {} (cluster {}) ready at {} in {} ms; data in {}", nodeId, storage.clusterId(),
                    bootstrap, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), storage.baseDir());
            return kafka;
        } finally {
            if (!started) {
                if (server != null) {
                    stopQuietly(server);
                }
                if (!storage.persistent()) {
                    deleteRecursively(storage.baseDir());
                }
                releaseExitGuard();
            }
        }
    }

    /** {@code host:port} of the PLAINTEXT listener, for {@code bootstrap.servers}. */
    public String bootstrapServers() {
        return bootstrapServers;
    }

    /** The random cluster id the storage was formatted with. */
    public String clusterId() {
        return storage.clusterId();
    }

    /** The broker's (and controller's) node id. */
    public int nodeId() {
        return storage.nodeId();
    }

    /** The directory holding all data of this broker; a temporary one is gone after {@link #close()}. */
    public Path dataDirectory() {
        return storage.baseDir();
    }

    /** Whether {@link #close()} has been called. */
    public boolean isClosed() {
        return closed.get();
    }

    /**
     * Shuts down broker and controller, waits until they have stopped, and deletes the data
     * directory unless it is persistent. Idempotent; safe to call from any thread, including a shutdown hook.
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        long t0 = System.nanoTime();
        if (Thread.currentThread() != shutdownHook) {
            try {
                Runtime.getRuntime().removeShutdownHook(shutdownHook);
            } catch (IllegalStateException jvmShuttingDown) {
                // the JVM is already exiting; the hook may be running concurrently, which is fine
            }
        }
        stopQuietly(server);
        if (!storage.persistent()) {
            deleteRecursively(storage.baseDir());
        }
        releaseExitGuard();
        LOG.info("Embedded Kafka node {} stopped in {} ms", storage.nodeId(),
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
    }

    @Override
    public String toString() {
        return "EmbeddedKafka[" + bootstrapServers + ", node " + storage.nodeId() + ", cluster " + storage.clusterId()
                + (closed.get() ? ", closed" : "") + "]";
    }

    // ------------------------------------------------------------------------------------------

    private static Map<String, Object> brokerConfig(int nodeId, int clientPort, int controllerPort, String logDir,
                                                    Map<String, String> overrides) {
        Map<String, Object> p = new LinkedHashMap<>();
        // KRaft combined mode, one voter.
        p.put("process.roles", "broker,controller");
        p.put("node.id", String.valueOf(nodeId));
        p.put("controller.quorum.voters", nodeId + "@" + HOST + ":" + controllerPort);
        p.put("controller.listener.names", CONTROLLER_LISTENER);
        p.put("listeners", CLIENT_LISTENER + "://" + HOST + ":" + clientPort + ","
                + CONTROLLER_LISTENER + "://" + HOST + ":" + controllerPort);
        p.put("advertised.listeners", CLIENT_LISTENER + "://" + HOST + ":" + clientPort);
        p.put("listener.security.protocol.map", CLIENT_LISTENER + ":PLAINTEXT," + CONTROLLER_LISTENER + ":PLAINTEXT");
        p.put("inter.broker.listener.name", CLIENT_LISTENER);
        p.put("log.dirs", logDir);
        p.put("metadata.log.dir", logDir);

        // Everything internal on one replica, so that transactions and groups work on one broker.
        p.put("default.replication.factor", "1");
        p.put("min.insync.replicas", "1");
        p.put("offsets.topic.replication.factor", "1");
        p.put("offsets.topic.num.partitions", "10");
        p.put("transaction.state.log.replication.factor", "1");
        p.put("transaction.state.log.min.isr", "1");
        p.put("transaction.state.log.num.partitions", "10");
        p.put("share.coordinator.state.topic.replication.factor", "1");
        p.put("share.coordinator.state.topic.min.isr", "1");
        p.put("share.coordinator.state.topic.num.partitions", "10");
        p.put("group.initial.rebalance.delay.ms", "0");

        // Large records (score snapshots).
        p.put("message.max.bytes", String.valueOf(MAX_MESSAGE_BYTES));
        p.put("replica.fetch.max.bytes", String.valueOf(MAX_MESSAGE_BYTES));
        p.put("fetch.max.bytes", String.valueOf(MAX_MESSAGE_BYTES));

        // Footprint: fewer threads than a production broker, and a 16 MiB instead of a
        // 128 MiB (heap-allocated) dedupe buffer for the log cleaner of compacted topics.
        p.put("num.network.threads", "2");
        p.put("num.io.threads", "4");
        p.put("background.threads", "4");
        p.put("log.cleaner.dedupe.buffer.size", String.valueOf(16 * 1024 * 1024));
        p.put("num.recovery.threads.per.data.dir", "1");

        p.putAll(overrides);
        return p;
    }

    /**
     * Runs {@code KafkaRaftServer.startup()}, which blocks until the broker is unfenced, on a
     * helper thread so that the start timeout also covers it.
     */
    private static void startup(KafkaRaftServer server, int nodeId, long deadline, Duration timeout) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        Thread starter = new Thread(() -> {
            try {
                server.startup();
                done.complete(null);
            } catch (Throwable t) {
                done.completeExceptionally(t);
            }
        }, "embedded-kafka-" + nodeId + "-startup");
        starter.setDaemon(true);
        starter.start();
        try {
            done.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            // A bind failure of the client listener surfaces as such; one of the controller
            // listener goes through Kafka's fatal fault handler, i.e. a (suppressed) halt.
            if (causedByBindFailure(cause) || cause instanceof HaltRequestedException) {
                throw new RetryableStartFailure(cause);
            }
            throw new IllegalStateException("Embedded Kafka broker failed to start: " + cause, cause);
        } catch (TimeoutException e) {
            throw new IllegalStateException("Embedded Kafka broker did not start within " + timeout.toMillis()
                    + " ms (KafkaRaftServer.startup() still running; see the log)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("Interrupted while starting the embedded Kafka broker", e);
        }
    }

    private static void awaitReady(String bootstrap, int nodeId, long deadline, Duration timeout) {
        Map<String, Object> adminProps = Map.of(
                AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 5_000,
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 10_000,
                AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, 50,
                AdminClientConfig.CLIENT_ID_CONFIG, "embedded-kafka-" + nodeId + "-readiness");
        Throwable lastError = null;
        try (Admin admin = Admin.create(adminProps)) {
            while (System.nanoTime() < deadline) {
                long remainingMs = Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
                try {
                    Collection<Node> nodes = admin.describeCluster(
                                    new DescribeClusterOptions().timeoutMs((int) Math.min(remainingMs, 10_000)))
                            .nodes().get(remainingMs, TimeUnit.MILLISECONDS);
                    if (nodes.stream().anyMatch(n -> n.id() == nodeId)) {
                        return;
                    }
                    lastError = new IllegalStateException("broker not yet in cluster metadata: " + nodes);
                } catch (ExecutionException e) {
                    lastError = e.getCause();
                } catch (TimeoutException e) {
                    lastError = e;
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("Interrupted while waiting for the embedded Kafka broker", e);
                }
                sleep(50);
            }
        }
        throw new IllegalStateException("Embedded Kafka broker at " + bootstrap + " did not become ready within "
                + timeout.toMillis() + " ms (last error: " + lastError + ")", lastError);
    }

    /**
     * Kafka's server code ends the JVM ({@code Exit.halt(1)} / {@code Exit.exit(1)}) on fatal
     * faults, e.g. when the controller listener cannot bind its port. An embedded broker must not
     * take its host process (the CLI, a test JVM) down with it, so while any instance is starting
     * or running, Kafka's exit and halt procedures throw a {@link HaltRequestedException} instead,
     * as Kafka's own test harnesses do. The faulting broker thread dies, the fault is logged at
     * ERROR, and the JVM lives on. The procedures are reset to Kafka's defaults when the last
     * instance is closed. (They are JVM-global; only Kafka server and tool code calls them.)
     */
    private static void acquireExitGuard() {
        synchronized (EXIT_GUARD_LOCK) {
            if (exitGuardUsers++ == 0) {
                Exit.setHaltProcedure((status, message) -> {
                    throw new HaltRequestedException("halt", status, message);
                });
                Exit.setExitProcedure((status, message) -> {
                    throw new HaltRequestedException("exit", status, message);
                });
            }
        }
    }

    private static void releaseExitGuard() {
        synchronized (EXIT_GUARD_LOCK) {
            if (--exitGuardUsers == 0) {
                Exit.resetHaltProcedure();
                Exit.resetExitProcedure();
            }
        }
    }

    private static void stopQuietly(KafkaRaftServer server) {
        try {
            server.shutdown();
            server.awaitShutdown();
        } catch (RuntimeException e) {
            LOG.warn("Error while shutting down the embedded Kafka broker", e);
        }
    }

    /** Picks {@code n} distinct currently-free ports on 127.0.0.1. */
    private static int[] freePorts(int n) {
        ServerSocket[] sockets = new ServerSocket[n];
        try {
            int[] ports = new int[n];
            for (int i = 0; i < n; i++) {
                sockets[i] = new ServerSocket(0, 1, InetAddress.getByName(HOST));
                sockets[i].setReuseAddress(true);
                ports[i] = sockets[i].getLocalPort();
            }
            return ports;
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot find a free port on " + HOST, e);
        } finally {
            for (ServerSocket s : sockets) {
                if (s != null) {
                    try {
                        s.close();
                    } catch (IOException ignored) {
                        // nothing to do
                    }
                }
            }
        }
    }

    private static boolean causedByBindFailure(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof BindException) {
                return true;
            }
            String msg = t.getMessage();
            if (msg != null && (msg.contains("failed to bind") || msg.contains("Address already in use"))) {
                return true;
            }
        }
        return false;
    }

    private static void deleteRecursively(Path dir) {
        for (int attempt = 1; ; attempt++) {
            try {
                FileTrees.deleteRecursively(dir);
                return;
            } catch (IOException e) {
                if (attempt >= 3) {
                    LOG.warn("Could not delete the embedded Kafka directory {}: {}", dir, e.toString());
                    return;
                }
                sleep(100);
            }
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Keeps the broker's own logging out of the way when slf4j-simple is the SLF4J backend
     * (the CLI's choice, at {@code warn}, and the tests', at {@code info}). Unless the caller has
     * set them already, it sets these slf4j-simple system properties:
     * <ul>
     *   <li>{@code warn} for the broker's loggers: {@code kafka} (Scala core), {@code state.change.logger}
     *       and the server packages {@code org.apache.kafka.{server,controller,raft,metadata,image,
     *       storage,coordinator,snapshot,queue,network,security}};</li>
     *   <li>{@code error} for {@code org.apache.kafka.controller.QuorumController}, which warns on every
     *       fresh start that the metadata log is empty;</li>
     *   <li>{@code warn} for {@code org.apache.kafka.common.config.AbstractConfig}: the broker logs its
     *       400-line configuration several times per start. This also hides the clients' INFO
     *       config dumps; set {@code -Dorg.slf4j.simpleLogger.log.org.apache.kafka.common.config.AbstractConfig=info}
     *       to get them back.</li>
     * </ul>
     * slf4j-simple reads these properties when a logger is created, so this works after SLF4J has
     * been initialised, for loggers created afterwards. Nothing is written to stdout: slf4j-simple
     * logs to stderr, and log4j-core (pulled in by {@code kafka-server} at runtime for Kafka's
     * dynamic log-level API) is only used by that API and stays silent. Other SLF4J backends are
     * configured by their own files.
     */
    static void quietBrokerLogging() {
        String prefix = "org.slf4j.simpleLogger.log.";
        Map<String, String> levels = new LinkedHashMap<>();
        for (String logger : List.of("kafka", "state.change.logger", "org.apache.kafka.server",
                "org.apache.kafka.controller", "org.apache.kafka.raft", "org.apache.kafka.metadata",
                "org.apache.kafka.image", "org.apache.kafka.storage", "org.apache.kafka.coordinator",
                "org.apache.kafka.snapshot", "org.apache.kafka.queue", "org.apache.kafka.network",
                "org.apache.kafka.security")) {
            levels.put(logger, "warn");
        }
        // Warns "Performing controller activation. The metadata log appears to be empty" on every fresh start.
        levels.put("org.apache.kafka.controller.QuorumController", "error");
        // The broker dumps its ~400-line KafkaConfig at INFO several times per start (and on every
        // dynamic reconfiguration). The logger is shared with the clients' config dumps, which go too.
        levels.put("org.apache.kafka.common.config.AbstractConfig", "warn");
        for (Map.Entry<String, String> e : levels.entrySet()) {
            String key = prefix + e.getKey();
            if (System.getProperty(key) == null) {
                System.setProperty(key, e.getValue());
            }
        }
    }

    /** A start attempt that failed in a way new ports may fix. */
    private static final class RetryableStartFailure extends RuntimeException {
        private static final long serialVersionUID = 1L;

        RetryableStartFailure(Throwable cause) {
            super(cause.getMessage(), cause);
        }
    }

    /** Thrown in place of Kafka ending the JVM while an embedded broker is alive. */
    static final class HaltRequestedException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        HaltRequestedException(String kind, int status, String message) {
            super("Kafka requested " + kind + "(" + status + ")" + (message == null ? "" : ": " + message)
                    + "; suppressed because the broker is embedded (the fatal fault is logged above)");
            LOG.error("Embedded Kafka: {}", getMessage());
        }
    }
}
