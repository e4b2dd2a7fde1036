package ai.hfprune.pipeline.scorer;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;

/** A scorer's meters, all tagged {@code instance=<instance.id>} (the statistics' are {@link StatsSender}'s). */
record ScorerMeters(Counter tokens, Counter partials, Counter failures, Counter transactions, Counter deadLetters,
                    Timer batchSeconds) {

    static ScorerMeters register(MeterRegistry meters, String instanceId) {
        return new ScorerMeters(
                Counter.builder("hfprune_scorer_tokens").description("tokens scored")
                        .tag("instance", instanceId).register(meters),
                Counter.builder("hfprune_scorer_partials").description("importance partials committed")
                        .tag("instance", instanceId).register(meters),
                Counter.builder("hfprune_scorer_failures").description("failed attempts to score or commit a batch")
                        .tag("instance", instanceId).register(meters),
                Counter.builder("hfprune_scorer_transactions").description("transactions committed")
                        .tag("instance", instanceId).register(meters),
                Counter.builder("hfprune_dead_letters").description("records sent to the dead-letter topic")
                        .tag("service", "scorer").tag("instance", instanceId).register(meters),
                Timer.builder("hfprune_scorer_batch_seconds")
                        .description("one batch, from the start of its scoring to the commit of its transaction")
                        .tag("instance", instanceId).publishPercentileHistogram().register(meters));
    }
}
