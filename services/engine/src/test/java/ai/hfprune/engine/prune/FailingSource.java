package ai.hfprune.engine.prune;

import ai.hfprune.engine.io.TensorSource;

import java.nio.FloatBuffer;
import java.util.Set;

/** Weights that fail when one tensor is read (after {@code passes} good reads of it), as a full disk or a bad source would. */
final class FailingSource implements TensorSource {
    private final TensorSource inner;
    private final String failOn;
    private int passes;

    FailingSource(TensorSource inner, String failOn, int passes) {
        this.inner = inner;
        this.failOn = failOn;
        this.passes = passes;
    }

    FailingSource(TensorSource inner, String failOn) {
        this(inner, failOn, 0);
    }

    @Override
    public Set<String> names() {
        return inner.names();
    }

    @Override
    public long[] shape(String name) {
        return inner.shape(name);
    }

    @Override
    public void readFloats(String name, long first, FloatBuffer dst) {
        if (name.equals(failOn) && passes-- <= 0) {
            throw new IllegalStateException("cannot read " + name + " (injected failure)");
        }
        inner.readFloats(name, first, dst);
    }

    @Override
    public void close() {
    }
}
