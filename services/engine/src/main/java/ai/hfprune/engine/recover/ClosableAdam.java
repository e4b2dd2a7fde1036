package ai.hfprune.engine.recover;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.training.optimizer.Adam;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * DJL's {@link Adam}, unchanged, plus {@link #close()}: DJL creates each parameter's mean and variance with
 * {@code weight.zerosLike()} and then detaches them from every manager (see {@code Optimizer.withDefaultState}),
 * and a detached PyTorch array is never freed (DJL has no finalizer), so every recovery would leak twice the size
 * of what it trains. This subclass only remembers the state arrays DJL hands out and closes them.
 *
 * <p>What DJL 0.36's PyTorch {@code adamUpdate} does (read in its native source and checked by
 * {@code RecoveryMechanicsTest}): the weight is updated in place, w −= lr·√(1−β₂ᵗ)/(1−β₁ᵗ)·m/(√v + ε), with t
 * counted per optimizer (the largest update count of any parameter), then the weight's gradient is zeroed.
 * Its {@code clipGrad} only clamps from above ({@code clamp_max_}), so it is not used here.
 */
final class ClosableAdam extends Adam implements AutoCloseable {

    private final Set<NDArray> states = Collections.newSetFromMap(new IdentityHashMap<>());

    ClosableAdam(Adam.Builder builder) {
        super(builder);
    }

    @Override
    protected NDArray withDefaultState(Map<String, Map<Device, NDArray>> state, String key, Device device,
                                       Function<String, NDArray> defaultFunction) {
        NDArray s = super.withDefaultState(state, key, device, defaultFunction);
        synchronized (states) {
            states.add(s);
        }
        return s;
    }

    /** How many state arrays (a mean and a variance per parameter) are alive. */
    int stateArrays() {
        synchronized (states) {
            return states.size();
        }
    }

    @Override
    public void close() {
        synchronized (states) {
            states.forEach(NDArray::close);
            states.clear();
        }
    }
}
