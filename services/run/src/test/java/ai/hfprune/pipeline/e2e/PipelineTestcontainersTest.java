package ai.hfprune.pipeline.e2e;

import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.testing.Assets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.testcontainers.junit.jupiter.Container;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.kafka.KafkaContainer;

import java.nio.file.Path;

/**
 * The equivalence test against Kafka in a container ({@code apache/kafka}), where Docker exists; skipped, visibly,
 * where it does not (the in-process broker covers the same test everywhere).
 */
@Testcontainers(disabledWithoutDocker = true)
class PipelineTestcontainersTest {

    @Container
    static final KafkaContainer KAFKA = new KafkaContainer("apache/kafka:4.1.0");

    @Test
    void twoScorersOnFourPartitionsEqualTheSingleProcessCommands(@TempDir Path out) throws Exception {
        try (Checkpoint checkpoint = Checkpoint.open(Assets.stories260K()); LlamaModel model = checkpoint.load()) {
            PipelineEquivalence.Reference expected = PipelineEquivalence.singleProcess(checkpoint, model);
            PipelineEndToEndTest.assertPipelineEqualsSingleProcess(KAFKA.getBootstrapServers(), out, checkpoint, model, expected);
        }
    }
}
