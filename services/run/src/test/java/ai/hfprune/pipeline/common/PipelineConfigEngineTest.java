package ai.hfprune.pipeline.common;

import ai.hfprune.engine.compensate.Compensation;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * PipelineConfig lives in the PyTorch-free pipeline library, so it names the engine's compensations and default damping
 * instead of reading them from {@link Compensation}; here, where both are on the class path, the two must agree.
 */
class PipelineConfigEngineTest {

    @Test
    void compensationsAreTheEnginesCompensations() {
        assertEquals(Arrays.stream(Compensation.values()).map(Compensation::id).toList(), PipelineConfig.COMPENSATIONS);
        for (String id : PipelineConfig.COMPENSATIONS) {
            assertEquals(Compensation.parse(id),
                    Compensation.parse(PipelineConfig.defaults().with("prune.compensate", id.toUpperCase()).compensation()));
        }
    }

    @Test
    void defaultDampingIsTheEnginesDefault() {
        assertEquals(Compensation.DEFAULT_DAMPING, PipelineConfig.defaults().damping());
    }
}
