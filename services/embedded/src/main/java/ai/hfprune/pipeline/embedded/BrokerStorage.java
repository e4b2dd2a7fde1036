package ai.hfprune.pipeline.embedded;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.lang.reflect.InvocationTargetException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Collection;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.common.Uuid;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where a single-node KRaft broker keeps its data, and who it is: the log directory, the cluster id it was formatted
 * with, its node id and its controller port.
 *
 * <p>A <em>temporary</em> storage (tests, {@code hfprune run}) is a fresh directory with a random cluster id, deleted
 * when the broker closes. A <em>persistent</em> one ({@code hfprune broker --data-dir}) survives the broker: the
 * identity is kept in {@code hfprune-broker.properties} beside the logs, so that a broker restarted on the same
 * directory — after a clean stop or a kill -9 — is the same cluster with the same topics, offsets and transactions.
 * The controller port is kept too: a single-voter quorum names its voter by host and port, and a restart on another
 * port would not find its own quorum.
 */
record BrokerStorage(Path baseDir, String clusterId, int nodeId, int controllerPort, boolean persistent) {

    private static final Logger LOG = LoggerFactory.getLogger(BrokerStorage.class);
    private static final String FORMATTER_CLASS = "org.apache.kafka.metadata.storage.Formatter";
    private static final String IDENTITY_FILE = "hfprune-broker.properties";

    /** A new temporary directory; the controller port is chosen by the caller. */
    static BrokerStorage temporary(int nodeId, int controllerPort) {
        try {
            return new BrokerStorage(Files.createTempDirectory("hfprune-kafka-"), Uuid.randomUuid().toString(), nodeId,
                    controllerPort, false);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot create a temporary directory for the embedded Kafka broker", e);
        }
    }

    /**
     * The storage in {@code dir}: the one found there, or a new one (cluster id random, node id and controller port as
     * given) whose identity is written there before the broker first starts.
     */
    static BrokerStorage persistent(Path dir, int newNodeId, int newControllerPort) {
        Path identity = dir.resolve(IDENTITY_FILE);
        try {
            if (Files.exists(identity)) {
                Properties p = new Properties();
                try (Reader in = Files.newBufferedReader(identity, StandardCharsets.UTF_8)) {
                    p.load(in);
                }
                return new BrokerStorage(dir, required(p, "cluster.id", identity), Integer.parseInt(required(p, "node.id", identity)),
                        Integer.parseInt(required(p, "controller.port", identity)), true);
            }
            if (Files.exists(dir) && (!Files.isDirectory(dir) || !isEmpty(dir))) {
                throw new IllegalStateException(dir + " is not an hfprune broker's data directory (no " + IDENTITY_FILE
                        + ") and not empty; give an empty or new directory");
            }
            Files.createDirectories(dir);
            BrokerStorage storage = new BrokerStorage(dir, Uuid.randomUuid().toString(), newNodeId, newControllerPort, true);
            Properties p = new Properties();
            p.setProperty("cluster.id", storage.clusterId);
            p.setProperty("node.id", String.valueOf(newNodeId));
            p.setProperty("controller.port", String.valueOf(newControllerPort));
            Path tmp = dir.resolve(IDENTITY_FILE + ".tmp");
            try (Writer out = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                p.store(out, "identity of the hfprune broker whose logs are in this directory; do not edit");
            }
            Files.move(tmp, identity, StandardCopyOption.ATOMIC_MOVE);
            return storage;
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot open the broker's data directory " + dir + ": " + e.getMessage(), e);
        } catch (NumberFormatException e) {
            throw new IllegalStateException(identity + " is damaged: " + e.getMessage(), e);
        }
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (java.util.stream.Stream<Path> entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        }
    }

    private static String required(Properties p, String key, Path file) {
        String value = p.getProperty(key);
        if (value == null || value.isBlank()) {
            throw new IllegalStateException(file + " is damaged: it has no " + key);
        }
        return value;
    }

    Path logDir() {
        return baseDir.resolve("kraft-combined-logs");
    }

    /** Formats the log directory unless it has been formatted already (a restart of a persistent storage). */
    void formatIfNeeded(String controllerListener) {
        if (Files.exists(logDir().resolve("meta.properties"))) {
            LOG.debug("{} is formatted already (cluster {})", logDir(), clusterId);
            return;
        }
        format(controllerListener);
    }

    /**
     * Formats the log directory like {@code kafka-storage format -t <clusterId> -c <config>}
     * does in Kafka 4.4 ({@code kafka.tools.StorageTool#runFormatCommand}): writes
     * {@code meta.properties} and the bootstrap metadata snapshot ({@code 00000000000000000000-0000000000.checkpoint})
     * for the latest production {@code metadata.version} and default feature levels, with a
     * static quorum ({@code kraft.version=0}).
     *
     * <p>The {@code Formatter} lives in {@code kafka-metadata}, which {@code kafka_2.13} pulls in
     * at runtime scope only, so it is called reflectively rather than compiled against.
     */
    private void format(String controllerListener) {
        String logDir = logDir().toString();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (PrintStream printStream = new PrintStream(out, true, StandardCharsets.UTF_8)) {
            Class<?> formatterClass = Class.forName(FORMATTER_CLASS, true, BrokerStorage.class.getClassLoader());
            Object formatter = formatterClass.getConstructor().newInstance();
            invoke(formatter, "setPrintStream", PrintStream.class, printStream);
            invoke(formatter, "setNodeId", int.class, nodeId);
            invoke(formatter, "setClusterId", String.class, clusterId);
            invoke(formatter, "setDirectories", Collection.class, List.of(logDir));
            invoke(formatter, "setMetadataLogDirectory", String.class, logDir);
            invoke(formatter, "setControllerListenerName", String.class, controllerListener);
            invoke(formatter, "setWriteBootstrapSnapshot", boolean.class, true); // we are a controller
            invoke(formatter, "setUnstableFeatureVersionsEnabled", boolean.class, false);
            formatterClass.getMethod("run").invoke(formatter);
        } catch (InvocationTargetException e) {
            throw new IllegalStateException("Formatting the embedded Kafka storage in " + logDir + " failed: "
                    + e.getCause() + "; formatter output: " + out.toString(StandardCharsets.UTF_8).strip(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("Kafka's " + FORMATTER_CLASS + " (kafka-metadata 4.4) is missing or has an "
                    + "unexpected API; is org.apache.kafka:kafka_2.13 with its runtime dependencies on the classpath?", e);
        }
        LOG.debug("Formatted {}: {}", logDir, out.toString(StandardCharsets.UTF_8).strip());
    }

    private static void invoke(Object target, String method, Class<?> type, Object arg)
            throws ReflectiveOperationException {
        target.getClass().getMethod(method, type).invoke(target, arg);
    }
}
