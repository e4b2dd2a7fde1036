package ai.hfprune.pipeline.common;

import org.slf4j.Logger;

/** Closing a service's Kafka clients on the way out. */
public final class Clients {
    private Clients() {
    }

    /** A client that may be closed with a timeout ({@code producer::close} with a duration bound in). */
    @FunctionalInterface
    public interface Closing {
        void close();
    }

    /** Closes {@code client} if there is one; a failure is logged, not thrown, so the service's other clients close too. */
    public static void closeQuietly(Object client, Closing close, Logger log, String what) {
        if (client == null) {
            return;
        }
        try {
            close.close();
        } catch (RuntimeException e) {
            log.warn("{}: {}", what, e.toString());
        }
    }
}
