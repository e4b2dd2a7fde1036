package ai.hfprune.pipeline.common;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.importance.ScoringMemory;
import ai.hfprune.engine.importance.ScoringPrecision;
import ai.hfprune.engine.prune.Allocation;
import ai.hfprune.engine.prune.PruneOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Settings are checked when a service starts: each bad value is refused naming its setting. */
class PipelineConfigTest {

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "prune.allocation | globl | setting prune.allocation: unknown allocation 'globl'",
        "prune.mlp.ratio  | 1.5   | setting prune.mlp.ratio must be in [0, 1) (the fraction removed), got '1.5'",
        "prune.attn.ratio | -0.1  | setting prune.attn.ratio must be in [0, 1)",
        "prune.mlp.ratio  | abc   | setting prune.mlp.ratio must be a number, got 'abc'",
        "prune.compensate | lsq   | setting prune.compensate",
        "prune.damping    | -1    | setting prune.damping must be a finite number",
        "scorer.memory    | disk  | setting scorer.memory: unknown scoring memory mode 'disk' (choose one of auto, recompute, store)",
        "scorer.dtype     | f16   | setting scorer.dtype: unknown scoring type 'f16' (choose one of float32, bf16)"})
    void aBadPruneSettingIsRefusedByValidate(String key, String value, String message) {
        PipelineConfig config = PipelineConfig.load(Map.of(key, value), null, Map.of());
        HfpruneException e = assertThrows(HfpruneException.class, config::validate);
        assertTrue(e.getMessage().contains(message), e.getMessage());
    }

    @Test
    void scorersChooseTheirMemoryModeUnlessTold() {
        assertEquals(ScoringMemory.AUTO, PipelineConfig.load(Map.of(), null, Map.of()).validate().scorerMemory());
        assertEquals(ScoringMemory.RECOMPUTE, PipelineConfig.load(Map.of(), null, Map.of("HFPRUNE_SCORER_MEMORY", "recompute"))
                .validate().scorerMemory());
    }

    @Test
    void scorersComputeInFloat32UnlessTold() {
        assertEquals(ScoringPrecision.MODEL, PipelineConfig.load(Map.of(), null, Map.of()).validate().scorerPrecision());
        assertEquals(ScoringPrecision.BF16, PipelineConfig.load(Map.of(), null, Map.of("HFPRUNE_SCORER_DTYPE", "bf16"))
                .validate().scorerPrecision());
    }

    @Test
    void theCutComesFromThePruneSettings() {
        PruneOptions options = PipelineConfig.load(Map.of("prune.allocation", "global"), null,
                Map.of("HFPRUNE_PRUNE_MLP_RATIO", "0.3", "HFPRUNE_PRUNE_ATTN_RATIO", "0.25")).validate().pruneOptions();
        assertEquals(0.3, options.mlpRatio());
        assertEquals(0.25, options.attnRatio());
        assertEquals(Allocation.GLOBAL, options.allocation());
    }

    @Test
    void anUnknownKeyIsRefusedWhenTheSettingsAreRead() {
        HfpruneException e = assertThrows(HfpruneException.class,
                () -> PipelineConfig.load(Map.of("prune.alocation", "global"), null, Map.of()));
        assertTrue(e.getMessage().contains("unknown setting 'prune.alocation'"), e.getMessage());
    }
}
