package ai.hfprune.pipeline.aggregator;

import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.testing.BrokerFixture;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** The aggregator as a service on a real broker: what it leaves behind. */
class AggregatorServiceTest {

    private static BrokerFixture fixture;

    @BeforeAll
    static void start() {
        fixture = BrokerFixture.start("aggregator-service-test");
    }

    @AfterAll
    static void stop() {
        fixture.close();
    }

    @Test
    void itsTemporaryStateFolderIsDeletedWhenItStops() throws IOException {
        // a prefix of this test's own: the folder is found by the application id Kafka Streams names inside it, as
        // other builds on the machine make folders of the same pattern meanwhile
        String prefix = "state-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime() + ".";
        PipelineConfig config = fixture.config(prefix) // state.dir empty: a temporary folder, which RocksDB fills
                .with("aggregator.state.store", "rocksdb");
        Topics topics = Topics.of(config);
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, fixture.kafka.bootstrapServers()))) {
            topics.createAll(admin, 1, (short) 1);
        }
        AggregatorService aggregator = new AggregatorService(config, topics, List.of(ModelInfo.of(fixture.checkpoint)),
                new SimpleMeterRegistry());
        List<Path> folders;
        try {
            aggregator.start();
            folders = stateFoldersOf(prefix + "aggregator");
            assertEquals(1, folders.size(), "one temporary state folder while it runs: " + folders);
        } finally {
            aggregator.close();
        }
        assertFalse(Files.exists(folders.get(0)), folders.get(0) + " is left behind");
        aggregator.close(); // closing again changes nothing
    }

    /** The temporary folders that hold Kafka Streams state of {@code applicationId}. */
    private static List<Path> stateFoldersOf(String applicationId) throws IOException {
        try (Stream<Path> tmp = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
            return tmp.filter(p -> p.getFileName().toString().startsWith("hfprune-aggregator-"))
                    .filter(p -> Files.isDirectory(p.resolve(applicationId)))
                    .toList();
        }
    }
}
