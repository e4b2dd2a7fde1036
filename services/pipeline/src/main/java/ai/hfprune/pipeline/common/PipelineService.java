package ai.hfprune.pipeline.common;

import java.time.Duration;
import java.util.Optional;

/**
 * What the four services (sampler, scorer, aggregator, pruner) share: {@link #start}, a bounded and idempotent
 * {@link #stop}, and a {@link Health} that says whether the service's worker is alive. A worker that died (a fenced
 * scorer, a pruner whose loop threw, a Streams client in ERROR) makes the service {@link Status#FAILED} with its
 * cause; {@code /health} then answers 503 and the service's process exits non-zero, so restart policies fire.
 */
public interface PipelineService extends AutoCloseable {

    /** How long {@link #close} waits for the worker. */
    Duration DEFAULT_STOP = Duration.ofSeconds(60);

    enum Status {
        /** made or starting: not yet doing its work */
        STARTING,
        /** its worker runs */
        RUNNING,
        /** stopped by {@link #stop}, or (a sampler's file run) done with its work */
        STOPPED,
        /** its worker died; see {@link Health#cause} */
        FAILED
    }

    /** A service's state; {@code cause} is set for {@link Status#FAILED} only. */
    record Health(String service, Status status, Throwable cause) {
        public boolean live() {
            return status != Status.FAILED;
        }

        public boolean ready() {
            return status == Status.RUNNING;
        }

        public Optional<Throwable> failure() {
            return Optional.ofNullable(cause);
        }
    }

    /** The name in logs and in {@code /health}, e.g. {@code scorer scorer-1}. */
    String name();

    void start();

    /**
     * Stops the worker and closes the clients, waiting at most {@code timeout} for the worker. Idempotent; after a
     * failure it still releases what the service holds.
     *
     * @return whether the worker had ended within the timeout
     */
    boolean stop(Duration timeout);

    Health health();

    /** Waits until the service is {@link Status#STOPPED} or {@link Status#FAILED}; @return whether it is. */
    boolean awaitEnd(Duration timeout) throws InterruptedException;

    @Override
    default void close() {
        stop(DEFAULT_STOP);
    }
}
