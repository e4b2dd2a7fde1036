package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.aggregator.AggregatorService;
import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.sampler.CalibrationSampler;
import ai.hfprune.pipeline.testing.BrokerFixture;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Static group membership: the scorers' consumer and the aggregator's main consumer carry {@code group.instance.id}
 * from {@code instance.id} and the chosen session timeout; a scorer that died without leaving the group (as after a
 * kill -9) and is restarted with its instance.id gets its partition back at once, not after the session timeout.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class StaticMembershipTest {

    private static BrokerFixture fixture;

    @BeforeAll
    static void setUp() {
        fixture = BrokerFixture.start("static-membership-test");
    }

    @AfterAll
    static void tearDown() {
        if (fixture != null) {
            fixture.close();
        }
    }

    @Test
    void theConfigsCarryTheInstanceIdAndTheSessionTimeout() {
        PipelineConfig config = fixture.config("configs.").with("instance.id", "scorer-7");
        ScorerService scorer = new ScorerService(config, Topics.of(config), fixture.checkpoint, new SimpleMeterRegistry());
        try {
            Map<String, Object> c = scorer.consumerConfig();
            assertEquals("scorer-7", c.get(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG));
            assertEquals(30_000, c.get(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), "the default chosen by measurement");
        } finally {
            scorer.stop(Duration.ofSeconds(10));
        }
        Map<String, Object> s = AggregatorService.streamsConfig(config.with("instance.id", "aggregator").with("group.session.timeout.ms", "20000"));
        assertEquals("aggregator", s.get("main.consumer." + ConsumerConfig.GROUP_INSTANCE_ID_CONFIG));
        assertEquals(20_000, s.get("main.consumer." + ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG));
    }

    @Test
    void aScorerRestartedWithItsInstanceIdTakesItsPartitionBackWithoutWaitingForTheSession() throws Exception {
        // a session of 10 minutes: were the successor to wait for the dead member's session to end, the test would time out
        PipelineConfig config = fixture.config("restart.").with("seq.len", "32").with("batch.windows", "2").with("max.windows", "8")
                .with("criteria", "entropy").with("prune.compensate", "none").with("scorer.commit.interval.ms", "0")
                .with("instance.id", "scorer-r").with("group.session.timeout.ms", "600000");
        Topics topics = Topics.of(config);
        try (Admin admin = Admin.create(ClientConfigs.admin(fixture.kafka.bootstrapServers()))) {
            topics.createAll(admin, 1, (short) 1);
        }
        CalibrationSampler sampler = new CalibrationSampler(config, topics, fixture.checkpoint,
                List.of(Assets.require("data/tinystories/train-head-2MiB.txt")), false, new SimpleMeterRegistry());
        sampler.start();
        assertTrue(sampler.awaitCompletion(Duration.ofSeconds(60)));
        int perBatch = 2 * fixture.checkpoint.config().numHiddenLayers();

        ScorerService first = new ScorerService(config, topics, fixture.checkpoint, new SimpleMeterRegistry());
        first.crashAfterPartialsForTest(2L * perBatch + 1); // closes its consumer without leaving the group
        first.start();
        assertTrue(first.awaitTermination(Duration.ofSeconds(60)));
        assertEquals(ScorerService.State.CRASHED, first.state());
        assertEquals(2, first.batchesScored());

        ScorerService successor = new ScorerService(config, topics, fixture.checkpoint, new SimpleMeterRegistry());
        successor.start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60); // a tenth of the session timeout
            while (successor.batchesScored() < 2) {
                assertTrue(System.nanoTime() < deadline, () -> "the successor scored " + successor.batchesScored() + ", " + successor.health());
                Thread.sleep(50);
            }
        } finally {
            assertTrue(successor.stop(Duration.ofSeconds(30)));
        }
    }
}
