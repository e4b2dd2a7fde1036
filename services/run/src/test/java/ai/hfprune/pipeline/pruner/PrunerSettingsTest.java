package ai.hfprune.pipeline.pruner;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.pipeline.common.PipelineConfig;
import ai.hfprune.pipeline.common.Topics;
import ai.hfprune.pipeline.run.PipelineRun;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** prune.* settings are refused when the pruner or the run starts, not as FAILED results after the calibration. */
class PrunerSettingsTest {

    private static Checkpoint checkpoint;

    @BeforeAll
    static void open() {
        checkpoint = Checkpoint.open(Assets.stories260K());
    }

    @AfterAll
    static void close() {
        checkpoint.close();
    }

    private static PipelineConfig config(String key, String value) {
        return PipelineConfig.defaults().with("schema.registry.url", "mock://pruner-settings-test").with(key, value);
    }

    @Test
    void aPrunerWithAnUnknownAllocationIsNotMade() {
        PipelineConfig config = config("prune.allocation", "globl");
        HfpruneException e = assertThrows(HfpruneException.class,
                () -> new PrunerService(config, Topics.of(config), checkpoint, new SimpleMeterRegistry()));
        assertTrue(e.getMessage().contains("setting prune.allocation: unknown allocation 'globl'"), e.getMessage());
    }

    @Test
    void badRecoverySettingsAreRefusedAtStart() {
        for (String[] bad : new String[][] {{"prune.recover.steps", "-1", "must be 0 or positive"},
                {"prune.recover.lr", "fast", "must be a number"}, {"prune.recover.lr", "0", "learning rate must be positive"},
                {"prune.recover.held.out", "0", "must be at least 1"}}) {
            PipelineConfig config = config(bad[0], bad[1]);
            HfpruneException e = assertThrows(HfpruneException.class, () -> PrunerService.checkSettings(config, checkpoint));
            assertTrue(e.getMessage().contains(bad[0]) && e.getMessage().contains(bad[2]), e.getMessage());
        }
    }

    @Test
    void anAttentionRatioTheModelCannotTakeIsRefusedAtStart() {
        // stories260K has 4 KV groups per layer: 0.3 of them is no whole number
        PipelineConfig config = config("prune.attn.ratio", "0.3");
        HfpruneException e = assertThrows(HfpruneException.class,
                () -> new PrunerService(config, Topics.of(config), checkpoint, new SimpleMeterRegistry()));
        assertTrue(e.getMessage().contains("settings prune.*") && e.getMessage().contains("whole number of KV groups"),
                e.getMessage());
    }

    @Test
    void aRunWithABadPruneSettingFailsBeforeItStartsAnything() {
        List<String> lines = new ArrayList<>();
        PipelineConfig config = config("prune.allocation", "globl").with("metrics.port", "-1");
        HfpruneException e = assertThrows(HfpruneException.class,
                () -> PipelineRun.start(config, checkpoint, 1, false, lines::add).close());
        assertTrue(e.getMessage().contains("setting prune.allocation"), e.getMessage());
        assertEquals(List.of(), lines, "no broker, no service was started");
    }
}
