package ai.hfprune.pipeline.aggregator;

import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.testing.BrokerFixture;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.TransactionListing;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

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

    /**
     * With its state in memory Kafka Streams draws a new process id at every start; the aggregator's transactional
     * ids come from {@code instance.id} instead, so that a restarted aggregator's producer fences its killed
     * predecessor and aborts the transaction it left open at once ({@link StableTransactionalIds}).
     */
    @Test
    void aRestartedAggregatorHasTheTransactionalIdOfItsPredecessor() throws Exception {
        String prefix = "txn-id-test-" + System.nanoTime() + ".";
        PipelineConfig config = fixture.config(prefix).with("aggregator.state.store", "memory").with("instance.id", "agg-7");
        Topics topics = Topics.of(config);
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, fixture.kafka.bootstrapServers()))) {
            topics.createAll(admin, 1, (short) 1);
            for (int start = 1; start <= 2; start++) {
                AggregatorService aggregator = new AggregatorService(config, topics, List.of(ModelInfo.of(fixture.checkpoint)),
                        new SimpleMeterRegistry());
                try {
                    aggregator.start();
                    assertEquals(Set.of(prefix + "aggregator-agg-7-1"), transactionalIds(admin, prefix),
                            "the transactional ids of " + prefix + "* after start " + start);
                } finally {
                    aggregator.close();
                }
            }
        }
    }

    @Test
    void streamsTransactionalIdsTakeTheInstanceIdForTheProcessId() {
        StableTransactionalIds ids = new StableTransactionalIds("p.aggregator", "aggregator-1");
        assertEquals("p.aggregator-aggregator-1-3", ids.stable("p.aggregator-" + UUID.randomUUID() + "-3"));
        assertThrows(IllegalStateException.class, () -> ids.stable("other-" + UUID.randomUUID() + "-1"));
        assertThrows(IllegalStateException.class, () -> ids.stable("p.aggregator-1"));
    }

    /** The transactional ids the coordinator knows whose names start with {@code prefix}, once Streams made its producer. */
    private static Set<String> transactionalIds(Admin admin, String prefix) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        Set<String> ids;
        do {
            ids = admin.listTransactions().all().get().stream().map(TransactionListing::transactionalId)
                    .filter(id -> id.startsWith(prefix)).collect(Collectors.toSet());
            if (!ids.isEmpty()) {
                return ids;
            }
            Thread.sleep(100);
        } while (System.nanoTime() < deadline);
        return ids;
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
