package ai.hfprune.pipeline.common;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongSupplier;

/**
 * Looks for hanging transactions on the pipeline's topics (every topic whose name starts with {@code topic.prefix},
 * Kafka Streams' internal ones included): open transactions ({@link OpenTransactions}) whose producer has written
 * nothing to the partition for {@code hanging.transaction.ms}, longer than any of the pipeline's transactions may
 * take. Such a partition holds every {@code read_committed} reader at its last stable offset, so the pipeline stops
 * moving without any error of its own; restarting a service does not help. The watch makes that loud: one WARN line
 * per hanging transaction with its partition, producer, start offset and coordinator state, and the gauge
 * {@code hfprune_hanging_transactions}, for a dashboard's alert. The remedy is an operator's: check what the
 * transaction held, then {@code kafka-transactions.sh abort}. The service stays healthy: it is not what is broken.
 */
public final class HangingTransactionWatch implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(HangingTransactionWatch.class);

    private final String topicPrefix;
    private final long olderThanMs;
    private final LongSupplier clockMs;
    private final Admin admin;
    private final AtomicInteger hanging = new AtomicInteger();
    private final MeterRegistry meters;
    private final Gauge gauge;
    private final Set<String> reported = new HashSet<>();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "hfprune-hanging-transaction-watch");
        t.setDaemon(true);
        return t;
    });

    /**
     * @param olderThan a transaction is hanging once its producer wrote nothing to the partition for this long
     * @param service   the {@code service} tag of the gauge
     */
    public HangingTransactionWatch(String bootstrap, String topicPrefix, Duration olderThan, MeterRegistry meters, String service) {
        this(Admin.create(ClientConfigs.admin(bootstrap)), topicPrefix, olderThan, System::currentTimeMillis, meters, service);
    }

    HangingTransactionWatch(Admin admin, String topicPrefix, Duration olderThan, LongSupplier clockMs, MeterRegistry meters, String service) {
        this.admin = admin;
        this.topicPrefix = topicPrefix;
        this.olderThanMs = olderThan.toMillis();
        this.clockMs = clockMs;
        this.meters = meters;
        this.gauge = Gauge.builder("hfprune_hanging_transactions", hanging, AtomicInteger::get).tag("service", service)
                .strongReference(true)
                .description("open transactions on the pipeline's topics whose producer wrote nothing for hanging.transaction.ms")
                .register(meters);
    }

    /** Checks now and then every {@code every}, on a thread of its own. */
    public HangingTransactionWatch start(Duration every) {
        timer.scheduleWithFixedDelay(this::checkQuietly, 0, every.toMillis(), TimeUnit.MILLISECONDS);
        return this;
    }

    /** One check: the hanging transactions now (also the gauge's value), each logged the first time it is seen. */
    public synchronized List<OpenTransactions.Open> check() throws Exception {
        List<String> topics = admin.listTopics().names().get(30, TimeUnit.SECONDS).stream().filter(t -> t.startsWith(topicPrefix)).toList();
        long now = clockMs.getAsLong();
        List<OpenTransactions.Open> found = topics.isEmpty() ? List.of() : OpenTransactions.find(admin, topics, Duration.ofSeconds(30))
                .stream().filter(o -> now - o.lastTimestampMs() >= olderThanMs).toList();
        hanging.set(found.size());
        for (OpenTransactions.Open o : found) {
            if (reported.add(o.partition() + "/" + o.producerId() + "/" + o.startOffset())) {
                LOG.warn("hanging transaction: {}; its producer wrote nothing for {} s, so every read_committed reader of {} waits at "
                        + "offset {} for good. Check what it holds, then end it with kafka-transactions.sh abort (README, Chaos)",
                        o.describe(), (now - o.lastTimestampMs()) / 1000, o.partition(), o.startOffset());
            }
        }
        return found;
    }

    private void checkQuietly() {
        try {
            check();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            LOG.debug("hanging transactions not checked: {}", e.toString()); // the broker away: the next check tries again
        }
    }

    @Override
    public void close() {
        timer.shutdownNow();
        meters.remove(gauge); // a watch started again on the same registry (a restarted service) registers its own
        admin.close(Duration.ofSeconds(5));
    }
}
