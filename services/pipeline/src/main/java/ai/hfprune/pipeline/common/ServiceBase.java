package ai.hfprune.pipeline.common;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The health bookkeeping of a {@link PipelineService}: the subclass says when its worker runs, stopped or died, and
 * this class keeps the state, logs a failure's cause exactly once (the first cause wins: what follows is usually its
 * consequence) and wakes {@link #awaitEnd}.
 */
public abstract class ServiceBase implements PipelineService {

    private static final Logger LOG = LoggerFactory.getLogger(ServiceBase.class);

    private final AtomicReference<Health> health = new AtomicReference<>();
    private final CountDownLatch ended = new CountDownLatch(1);

    protected ServiceBase() {
    }

    @Override
    public final Health health() {
        Health h = health.get();
        return h != null ? h : new Health(name(), Status.STARTING, null);
    }

    /** The worker is up (a later failure or stop still wins over this). */
    protected final void running() {
        health.updateAndGet(h -> h == null || h.status() == Status.STARTING ? new Health(name(), Status.RUNNING, null) : h);
    }

    /** Stopped on request, or done; a failure stays a failure. */
    protected final void stopped() {
        health.updateAndGet(h -> h != null && h.status() == Status.FAILED ? h : new Health(name(), Status.STOPPED, null));
        ended.countDown();
    }

    /**
     * The worker died of {@code cause}: the service is FAILED for good, and the cause is logged here, once (callers
     * must not log it again).
     *
     * @return whether this call made the service FAILED (false: it was already)
     */
    protected final boolean failed(Throwable cause) {
        Health was = health.getAndUpdate(h -> h != null && h.status() == Status.FAILED ? h : new Health(name(), Status.FAILED, cause));
        boolean first = was == null || was.status() != Status.FAILED;
        if (first) {
            LOG.error("{} failed: {}", name(), cause.toString(), cause);
        }
        ended.countDown();
        return first;
    }

    @Override
    public final boolean awaitEnd(Duration timeout) throws InterruptedException {
        return ended.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }
}
