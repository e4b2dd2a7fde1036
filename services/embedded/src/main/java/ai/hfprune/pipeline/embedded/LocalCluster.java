package ai.hfprune.pipeline.embedded;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.FileTrees;
import ai.hfprune.pipeline.common.MetricsServer;
import ai.hfprune.pipeline.serde.InMemorySchemaRegistry;
import ai.hfprune.pipeline.serde.SchemaRegistryHttp;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * A local cluster for services in separate processes, what {@code hfprune broker} runs: the embedded single-node
 * KRaft broker and, beside it, a schema registry served over HTTP (Confluent's REST API, see
 * {@link SchemaRegistryHttp}) with the broker process's {@code /metrics} on the same port. Both listen on 127.0.0.1
 * only. With a data directory, both survive a restart (a kill -9 included): the broker's logs and identity
 * ({@link BrokerStorage}) and the registry's journal are kept there; without one, a temporary directory is used and
 * deleted on {@link #close()}.
 */
public final class LocalCluster implements AutoCloseable {

    private static final String REGISTRY_JOURNAL = "schema-registry.journal";

    private final EmbeddedKafka broker;
    private final InMemorySchemaRegistry registry;
    private final MetricsServer http;
    private final Path dataDir;
    private final boolean temporary;

    private LocalCluster(EmbeddedKafka broker, InMemorySchemaRegistry registry, MetricsServer http, Path dataDir,
                         boolean temporary) {
        this.broker = broker;
        this.registry = registry;
        this.http = http;
        this.dataDir = dataDir;
        this.temporary = temporary;
    }

    /**
     * @param dataDir      where the cluster keeps its data (created if missing), or null for a temporary directory
     * @param brokerPort   the broker's client port on 127.0.0.1 (0: any free port)
     * @param registryPort the registry's HTTP port on 127.0.0.1 (0: any free port)
     */
    public static LocalCluster start(Path dataDir, int brokerPort, int registryPort) {
        boolean temporary = dataDir == null;
        Path dir;
        try {
            dir = temporary ? Files.createTempDirectory("hfprune-broker-") : dataDir.toAbsolutePath();
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new HfpruneException("cannot create the broker's data directory " + dataDir + ": " + e.getMessage(), e);
        }
        EmbeddedKafka broker = null;
        InMemorySchemaRegistry registry = null;
        try {
            registry = InMemorySchemaRegistry.persistent(dir.resolve(REGISTRY_JOURNAL));
            broker = EmbeddedKafka.startPersistent(dir.resolve("kafka"), brokerPort, Map.of(), Duration.ofSeconds(60));
            MetricsServer http = new MetricsServer(InetAddress.getLoopbackAddress(), registryPort);
            SchemaRegistryHttp.serve(registry, http::handle);
            return new LocalCluster(broker, registry, http, dir, temporary);
        } catch (RuntimeException e) {
            if (broker != null) {
                broker.close();
            }
            if (registry != null) {
                registry.closeJournal();
            }
            if (temporary) {
                deleteQuietly(dir);
            }
            if (e instanceof HfpruneException) {
                throw e;
            }
            throw new HfpruneException("the local cluster did not start: " + e.getMessage(), e);
        }
    }

    public String bootstrapServers() {
        return broker.bootstrapServers();
    }

    /** The registry's URL, for {@code schema.registry.url}. */
    public String registryUrl() {
        return http.url("").orElseThrow();
    }

    public Path dataDirectory() {
        return dataDir;
    }

    public boolean isTemporary() {
        return temporary;
    }

    /** Stops the registry and the broker; a temporary data directory is deleted. Idempotent. */
    @Override
    public synchronized void close() {
        if (broker.isClosed()) {
            return;
        }
        http.close();
        broker.close();
        registry.closeJournal();
        if (temporary) {
            deleteQuietly(dataDir);
        }
    }

    private static void deleteQuietly(Path dir) {
        try {
            FileTrees.deleteRecursively(dir);
        } catch (IOException | UncheckedIOException e) {
            System.err.println("hfprune: could not delete " + dir + ": " + e.getMessage());
        }
    }
}
