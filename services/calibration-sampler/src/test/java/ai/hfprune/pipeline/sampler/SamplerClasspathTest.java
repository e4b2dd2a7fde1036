package ai.hfprune.pipeline.sampler;

import ai.hfprune.pipeline.testing.ServiceClasspath;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The calibration-sampler's image holds the tokenizer and no PyTorch: on its runtime class path (this module's runtime
 * dependencies, not the test class path) no pytorch jar, no PyTorch engine class, no engine class, no Kafka Streams;
 * yet the sampler, its tokenizers and its main load and start.
 */
class SamplerClasspathTest {

    @Test
    void runtimeClasspathHasTheTokenizerButNoPytorchJar() throws Exception {
        List<Path> entries = ServiceClasspath.entries();
        assertTrue(entries.stream().anyMatch(p -> p.getFileName().toString().startsWith("tokenizers-")), entries::toString);
        assertFalse(entries.stream().anyMatch(p -> p.toString().contains("pytorch") || p.toString().contains("hfprune-engine")
                || p.getFileName().toString().startsWith("kafka-streams") || p.getFileName().toString().startsWith("rocksdb")),
                entries::toString);
    }

    @Test
    void pytorchIsNotLoadableButTheSamplerIs() throws Exception {
        Map<String, String> loaded = ServiceClasspath.probe("ai.djl.pytorch.engine.PtEngine", "ai.hfprune.engine.model.Checkpoint",
                CalibrationSampler.class.getName(), SamplerMain.class.getName(), "ai.hfprune.engine.tokenizer.HfTokenizer",
                "ai.hfprune.engine.tokenizer.SentencePieceTokenizer");
        assertTrue(loaded.get("ai.djl.pytorch.engine.PtEngine").startsWith("missing: java.lang.ClassNotFoundException"), loaded::toString);
        assertTrue(loaded.get("ai.hfprune.engine.model.Checkpoint").startsWith("missing: java.lang.ClassNotFoundException"), loaded::toString);
        for (String c : List.of(CalibrationSampler.class.getName(), SamplerMain.class.getName(),
                "ai.hfprune.engine.tokenizer.HfTokenizer", "ai.hfprune.engine.tokenizer.SentencePieceTokenizer")) {
            assertEquals("loaded", loaded.get(c), loaded::toString);
        }
    }

    @Test
    void mainRefusesAMissingBootstrapInOneLine() throws Exception {
        ServiceClasspath.Run run = ServiceClasspath.java(SamplerMain.class.getName(), "--follow", "--set", "model=/nonexistent.gguf");
        assertEquals(1, run.exitCode(), run.output());
        assertEquals("hfprune: error: --bootstrap (or HFPRUNE_BOOTSTRAP_SERVERS) is required for a service", run.output().strip());
        run = ServiceClasspath.java(SamplerMain.class.getName(), "--fast");
        assertEquals(1, run.exitCode(), run.output());
        assertTrue(run.output().startsWith("hfprune: error: unknown argument '--fast'"), run.output());
    }
}
