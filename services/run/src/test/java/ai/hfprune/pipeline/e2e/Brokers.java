package ai.hfprune.pipeline.e2e;

import ai.hfprune.pipeline.embedded.EmbeddedKafka;

/**
 * The broker an end-to-end test runs against: an external cluster when {@code -Dkafka.bootstrap=HOST:PORT} is given,
 * else the in-process KRaft broker (started once per test class).
 */
final class Brokers {
    private Brokers() {
    }

    interface Broker extends AutoCloseable {
        String bootstrapServers();

        @Override
        void close();
    }

    static Broker start() {
        String external = System.getProperty("kafka.bootstrap", "");
        if (!external.isBlank()) {
            return new Broker() {
                @Override
                public String bootstrapServers() {
                    return external;
                }

                @Override
                public void close() {
                }
            };
        }
        EmbeddedKafka kafka = EmbeddedKafka.start();
        return new Broker() {
            @Override
            public String bootstrapServers() {
                return kafka.bootstrapServers();
            }

            @Override
            public void close() {
                kafka.close();
            }
        };
    }
}
