package ai.hfprune.pipeline.aggregator;

import ai.hfprune.pipeline.testing.ServiceClasspath;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The aggregator's image holds no PyTorch: on its runtime class path (this module's runtime dependencies, not the test
 * class path) no pytorch jar, no PyTorch engine class, no engine class; yet the service and its main load and start.
 */
class AggregatorClasspathTest {

    @Test
    void runtimeClasspathHasNoPytorchJar() throws Exception {
        List<Path> entries = ServiceClasspath.entries();
        assertTrue(entries.stream().anyMatch(p -> p.getFileName().toString().startsWith("kafka-streams")), entries::toString);
        assertFalse(entries.stream().anyMatch(p -> p.toString().contains("pytorch") || p.toString().contains("hfprune-engine")),
                entries::toString);
    }

    @Test
    void pytorchIsNotLoadableButTheServiceIs() throws Exception {
        Map<String, String> loaded = ServiceClasspath.probe("ai.djl.pytorch.engine.PtEngine", "ai.hfprune.engine.model.Checkpoint",
                AggregatorService.class.getName(), AggregatorTopology.class.getName(), AggregatorMain.class.getName());
        assertTrue(loaded.get("ai.djl.pytorch.engine.PtEngine").startsWith("missing: java.lang.ClassNotFoundException"), loaded::toString);
        assertTrue(loaded.get("ai.hfprune.engine.model.Checkpoint").startsWith("missing: java.lang.ClassNotFoundException"), loaded::toString);
        assertEquals("loaded", loaded.get(AggregatorService.class.getName()), loaded::toString);
        assertEquals("loaded", loaded.get(AggregatorTopology.class.getName()), loaded::toString);
        assertEquals("loaded", loaded.get(AggregatorMain.class.getName()), loaded::toString);
    }

    /** The image's entry point runs on that class path: it validates its settings and answers bad input in one line. */
    @Test
    void mainRefusesAMissingBootstrapInOneLine() throws Exception {
        ServiceClasspath.Run run = ServiceClasspath.java(AggregatorMain.class.getName(), "--set", "model=/nonexistent.gguf");
        assertEquals(1, run.exitCode(), run.output());
        assertEquals("hfprune: error: --bootstrap (or HFPRUNE_BOOTSTRAP_SERVERS) is required for a service", run.output().strip());
        run = ServiceClasspath.java(AggregatorMain.class.getName(), "--set", "prune.allocation=globl");
        assertEquals(1, run.exitCode(), run.output());
        assertTrue(run.output().startsWith("hfprune: error: setting prune.allocation"), run.output());
    }
}
