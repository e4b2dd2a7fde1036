package ai.hfprune.pipeline.testing;

import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.embedded.EmbeddedKafka;
import ai.hfprune.pipeline.serde.InMemorySchemaRegistry;

/**
 * What the services' broker tests share, one per test class: an in-process broker, stories260K and a {@code mock://}
 * schema-registry scope of the class's own. Start it in {@code @BeforeAll}, close it in {@code @AfterAll}.
 */
public final class BrokerFixture implements AutoCloseable {

    static {
        if (System.getProperty("org.slf4j.simpleLogger.log.org.apache.kafka") == null) {
            System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka", "warn");
        }
    }

    public final Checkpoint checkpoint;
    public final EmbeddedKafka kafka;
    private final String scope;

    private BrokerFixture(Checkpoint checkpoint, EmbeddedKafka kafka, String scope) {
        this.checkpoint = checkpoint;
        this.kafka = kafka;
        this.scope = scope;
    }

    public static BrokerFixture start(String registryScope) {
        Checkpoint checkpoint = Checkpoint.open(Assets.stories260K());
        try {
            return new BrokerFixture(checkpoint, EmbeddedKafka.start(), registryScope);
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
    }

    /** The default settings on this broker and registry scope, with the given topic prefix. */
    public PipelineConfig config(String topicPrefix) {
        return PipelineConfig.defaults()
                .with("bootstrap.servers", kafka.bootstrapServers())
                .with("topic.prefix", topicPrefix)
                .with("schema.registry.url", "mock://" + scope);
    }

    @Override
    public void close() {
        try {
            kafka.close();
        } finally {
            checkpoint.close();
            InMemorySchemaRegistry.drop(scope);
        }
    }
}
