package ai.hfprune.pipeline.scorer;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/** The wait before a retry, for both of a scorer's threads: exponential (1 s doubling to 30 s by default), cut short by a stop. */
final class RetryBackoff {

    private final CountDownLatch stopSignal = new CountDownLatch(1);
    private final Runnable onInterrupt;
    private Duration initial = Duration.ofSeconds(1);
    private Duration max = Duration.ofSeconds(30);

    /** {@code onInterrupt}: what an interrupted wait does (the scorer stops). */
    RetryBackoff(Runnable onInterrupt) {
        this.onInterrupt = onInterrupt;
    }

    /** Replaces the waits (before the scorer starts). */
    void set(Duration initial, Duration max) {
        this.initial = initial;
        this.max = max;
    }

    /** Cuts the current wait short, and every later one. */
    void stop() {
        stopSignal.countDown();
    }

    void await(int attempt) {
        long ms = initial.toMillis() << Math.min(attempt - 1, 20);
        ms = Math.min(ms, max.toMillis());
        try {
            stopSignal.await(ms, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            onInterrupt.run();
        }
    }
}
