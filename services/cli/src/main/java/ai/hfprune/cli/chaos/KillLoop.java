package ai.hfprune.cli.chaos;

import ai.hfprune.engine.HfpruneException;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.IntConsumer;

/**
 * The kills of a chaos run, planned from a seed: which process goes at each kill and how long before it. The broker
 * is killed once (unless {@code --no-broker-kill}) and the aggregator at least once, both within the first 60% of the kills, so that the last part of
 * the run is quiet for the aggregator (the duplicates are sent then, see {@link ChaosCommand}); scorers go all along.
 * A kill waits until its victim is ready, kill -9s it and starts it again at once with the same arguments; a watcher
 * times its recovery: until it is ready again (RUNNING; for the broker, its registry answers) and, for scorers and
 * the aggregator, until it has done work again (tokens scored, batches summed).
 */
final class KillLoop {

    static final String BROKER = "broker";
    static final String AGGREGATOR = "aggregator";

    /** One kill and, once known, its recovery times (NaN until then, or when never reached). */
    static final class Kill {
        final int index;
        final String victim;
        final long killedAtNanos;
        volatile double readySeconds = Double.NaN;
        volatile double workSeconds = Double.NaN;

        Kill(int index, String victim, long killedAtNanos) {
            this.index = index;
            this.victim = victim;
            this.killedAtNanos = killedAtNanos;
        }

        String kind() {
            return victim.startsWith("scorer") ? "scorer" : victim;
        }
    }

    /** Victim and gap (seconds before it) of each kill. */
    record Planned(String victim, double gapSeconds) {
    }

    private final PipelineProcesses run;
    private final ServiceProcess broker;
    private final List<Planned> plan;
    private final List<Kill> kills = new ArrayList<>();
    private final Consumer<String> log;
    private final ExecutorService watchers = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "chaos-recovery");
        t.setDaemon(true);
        return t;
    });

    KillLoop(PipelineProcesses run, ServiceProcess broker, List<Planned> plan, Consumer<String> log) {
        this.run = run;
        this.broker = broker;
        this.plan = plan;
        this.log = log;
    }

    /** The victims and gaps of {@code n} kills, from {@code seed}. */
    static List<Planned> plan(int n, long seed, double minGap, double maxGap, boolean killBroker) {
        Random r = new Random(seed);
        int quietFrom = Math.max(1, (int) Math.ceil(0.6 * n)); // no broker or aggregator kill from here on
        int brokerAt = killBroker && n >= 3 ? r.nextInt(quietFrom) : -1;
        List<String> victims = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            if (k == brokerAt) {
                victims.add(BROKER);
            } else {
                int pick = r.nextInt(k < quietFrom ? 3 : 2);
                victims.add(pick == 2 ? AGGREGATOR : "scorer-" + (pick + 1));
            }
        }
        if (!victims.contains(AGGREGATOR)) { // the aggregator at least once: the latest kill before the quiet part
            int k = quietFrom - 1 == brokerAt ? quietFrom - 2 : quietFrom - 1;
            victims.set(Math.max(0, k), AGGREGATOR);
        }
        List<Planned> plan = new ArrayList<>();
        for (String v : victims) {
            plan.add(new Planned(v, minGap + r.nextDouble() * (maxGap - minGap)));
        }
        return plan;
    }

    /** Index of the last kill of the broker or aggregator (-1 if none): after it, the aggregator runs undisturbed. */
    static int lastAggregatorDisturbance(List<Planned> plan) {
        int last = -1;
        for (int k = 0; k < plan.size(); k++) {
            if (!plan.get(k).victim().startsWith("scorer")) {
                last = k;
            }
        }
        return last;
    }

    /** Runs every kill; {@code beforeKill} gets each kill's index first (bad records are sent then). */
    List<Kill> run(IntConsumer beforeKill) throws InterruptedException, IOException {
        for (int k = 0; k < plan.size(); k++) {
            Planned p = plan.get(k);
            sleepSupervised(Duration.ofMillis((long) (p.gapSeconds() * 1000)));
            ServiceProcess victim = p.victim().equals(BROKER) ? broker : run.byName(p.victim());
            awaitReady(broker);
            awaitReady(victim);
            beforeKill.accept(k);
            Kill kill = new Kill(k, p.victim(), System.nanoTime());
            victim.kill9();
            victim.start();
            kills.add(kill);
            log.accept(String.format("kill %d: %s (kill -9, started again)", k + 1, p.victim()));
            watchers.submit(() -> watch(kill, victim));
        }
        return List.copyOf(kills);
    }

    /** Waits until every victim is ready again (or {@code timeout}), supervising meanwhile. */
    void awaitReadyAgain(Duration timeout) throws InterruptedException, IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline && !(broker.ready() && run.services().stream().allMatch(ServiceProcess::ready)
                && kills.stream().noneMatch(k -> Double.isNaN(k.readySeconds)))) {
            sleepSupervised(Duration.ofMillis(500));
        }
    }

    /** Stops timing: a victim that has not worked again by now (the data ran out) keeps no working time. */
    void stopWatching() throws InterruptedException {
        watchers.shutdownNow();
        watchers.awaitTermination(10, TimeUnit.SECONDS);
    }

    private void watch(Kill kill, ServiceProcess victim) {
        try {
            long deadline = kill.killedAtNanos + Duration.ofMinutes(5).toNanos();
            boolean ready = false;
            while (!(ready = victim.ready()) && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            if (!ready) { // not asked again: a restarted aggregator may be ready, then rebalance once more (503) at once
                return;
            }
            kill.readySeconds = (System.nanoTime() - kill.killedAtNanos) / 1e9;
            String metric = switch (kill.kind()) {
                case "scorer" -> "hfprune_scorer_tokens_total";
                case AGGREGATOR -> "hfprune_aggregator_batches_complete_total";
                default -> null;
            };
            if (metric == null) {
                return;
            }
            long workDeadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
            while (System.nanoTime() < workDeadline) {
                if (victim.metric(metric) > 0) {
                    kill.workSeconds = (System.nanoTime() - kill.killedAtNanos) / 1e9;
                    return;
                }
                Thread.sleep(100);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            log.accept("timing the recovery of kill " + (kill.index + 1) + " failed: " + e);
        }
    }

    private void awaitReady(ServiceProcess p) throws InterruptedException, IOException {
        long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
        while (!p.ready()) {
            if (System.nanoTime() > deadline) {
                throw new HfpruneException(p.name + " was not ready again within 5 min; its log " + p.log() + ":\n" + p.logTail(20));
            }
            sleepSupervised(Duration.ofMillis(100));
        }
    }

    void sleepSupervised(Duration d) throws InterruptedException, IOException {
        long end = System.nanoTime() + d.toNanos();
        do {
            run.supervise(log);
            Thread.sleep(Math.max(0, Math.min(100, (end - System.nanoTime()) / 1_000_000)));
        } while (System.nanoTime() < end);
    }
}
