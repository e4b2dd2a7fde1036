package ai.hfprune.tests;

import ai.hfprune.pipeline.serde.AvroSerde;
import ai.hfprune.pipeline.serde.HttpSchemaRegistry;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneStatus;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code hfprune broker} as its own process, as an operator runs it: the pipeline ({@code hfprune run --bootstrap}
 * with the registry's URL) works against it, and after a kill -9 of the broker and a restart on the same data
 * directory the committed prune result is still there and its schema id still resolves.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class BrokerProcessTest {

    @Test
    void thePipelineRunsAgainstABrokerProcessWhoseDataSurvivesAKill9(@TempDir Path dir) throws Exception {
        int port = freePort();
        int registryPort = freePort();
        Path data = dir.resolve("cluster");
        String bootstrap = "127.0.0.1:" + port;
        String registry = "http://127.0.0.1:" + registryPort;

        Process broker = startBroker(port, registryPort, data);
        try {
            Cli run = Cli.run("run", "--bootstrap", bootstrap, "--set", "schema.registry.url=" + registry,
                    "--set", "output.root=" + dir.resolve("pruned"), "--set", "eval.max.windows=4", "--timeout-minutes", "4");
            assertEquals(0, run.exitCode(), run.out() + run.err());
            assertTrue(run.out().contains("broker " + bootstrap + ", schema registry " + registry), run.out());
        } finally {
            broker.destroyForcibly(); // SIGKILL: no clean shutdown of the logs, the transactions or the registry
            broker.waitFor(30, TimeUnit.SECONDS);
        }

        Process restarted = startBroker(port, registryPort, data);
        try {
            List<PruneResult> results = readAll("hfprune.prune-results", bootstrap,
                    new AvroSerde<>(PruneResult.class, new HttpSchemaRegistry(registry)));
            assertEquals(1, results.size(), results.toString());
            assertEquals(PruneStatus.WRITTEN, results.get(0).getStatus(), results.toString());
            assertTrue(Files.isDirectory(Path.of(results.get(0).getOutputPath().toString())));
        } finally {
            restarted.destroy(); // SIGTERM: the command stops the broker cleanly and keeps the data directory
            assertTrue(restarted.waitFor(60, TimeUnit.SECONDS), "the broker stops on SIGTERM");
        }
        assertTrue(Files.exists(data.resolve("kafka/hfprune-broker.properties")));
        assertTrue(Files.exists(data.resolve("schema-registry.journal")));
    }

    /** Starts {@code hfprune broker} in a new JVM with this JVM's class path; returns once it says it is ready. */
    private static Process startBroker(int port, int registryPort, Path data) throws IOException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process process = new ProcessBuilder(java.toString(), "-Xmx1g", "-cp", System.getProperty("java.class.path"),
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "ai.hfprune.cli.Main", "broker",
                "--port", String.valueOf(port), "--registry-port", String.valueOf(registryPort), "--data-dir", data.toString())
                .redirectErrorStream(true).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder seen = new StringBuilder();
        for (String line; (line = out.readLine()) != null; ) {
            seen.append(line).append('\n');
            if (line.startsWith("for the services:")) {
                Thread drain = new Thread(() -> out.lines().forEach(l -> { }), "broker-output");
                drain.setDaemon(true);
                drain.start();
                return process;
            }
        }
        throw new AssertionError("hfprune broker ended before it was ready:\n" + seen);
    }

    private static <V extends org.apache.avro.specific.SpecificRecord> List<V> readAll(String topic, String bootstrap,
                                                                               AvroSerde<V> serde) {
        List<V> values = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap, ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"),
                new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic, Duration.ofSeconds(60)).stream()
                    .map(p -> new TopicPartition(topic, p.partition())).toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions, Duration.ofSeconds(60));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (partitions.stream().anyMatch(p -> consumer.position(p) < end.get(p)) && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    values.add(serde.deserialize(topic, r.value()));
                }
            }
        }
        return values;
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
