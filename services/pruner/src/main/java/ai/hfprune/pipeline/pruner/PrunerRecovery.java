package ai.hfprune.pipeline.pruner;

import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.PrunedModel;
import ai.hfprune.engine.recover.Recovery;
import ai.hfprune.engine.recover.RecoveryListener;
import ai.hfprune.engine.recover.RecoveryResult;
import ai.hfprune.schemas.PruneTrigger;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;

import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * The pruner's recovery of a version ({@code prune.recover.steps} > 0): self-distillation of the cut (and refit) model
 * towards the dense one ({@link Recovery}, as {@code prune --recover-steps}) on the first windows of the calibration
 * stream ({@link RecoveryWindows}). It runs before anything of the version is written, so a crash during it leaves
 * nothing behind and the trigger, uncommitted, is redone. Progress goes to metrics (the step, the held-out KL) and to
 * a line per held-out evaluation.
 */
final class PrunerRecovery {

    /** Recovery's windows: the first of the calibration stream, then those held out. */
    record Windows(int[][] train, int[][] heldOut) {
        int count() {
            return train.length + heldOut.length;
        }
    }

    /** What recovery made of a version. */
    record Recovered(PrunedModel model, RecoveryResult result, int trainWindows, int heldOutWindows) {
    }

    private final RecoverySettings settings;
    private final RecoveryWindows windows;
    private final MeterRegistry meters;
    private final Consumer<String> progress;
    private final Counter steps;
    private final Map<String, AtomicReference<Double>[]> gauges = new ConcurrentHashMap<>();
    /** Tests: told of every step, may throw to stand in for a crash mid-recovery. */
    volatile RecoveryListener testListener = RecoveryListener.NONE;

    PrunerRecovery(RecoverySettings settings, RecoveryWindows windows, MeterRegistry meters, Consumer<String> progress) {
        this.settings = settings;
        this.windows = windows;
        this.meters = meters;
        this.progress = progress;
        this.steps = meters.counter("hfprune_recover_steps");
    }

    /** The windows a version is recovered on, read afresh: the stream may have grown since the last version. */
    Windows windows() {
        int[][] all = windows.first(settings.trainWindows() + settings.heldOutWindows());
        int[] split = settings.split(all.length);
        return new Windows(Arrays.copyOfRange(all, 0, split[0]), Arrays.copyOfRange(all, split[0], split[0] + split[1]));
    }

    Recovered recover(LlamaModel dense, PrunedModel pruned, PruneTrigger trigger, Windows windows) {
        int[][] train = windows.train();
        int[][] heldOut = windows.heldOut();
        String what = trigger.getModel().getName() + " " + trigger.getCriterion() + " v" + trigger.getVersion();
        AtomicReference<Double>[] shown = gauges(trigger);
        progress.accept(String.format(Locale.ROOT, "recovering %s: %d steps on %d calibration windows, %d held out", what,
                settings.options().steps(), train.length, heldOut.length));
        RecoveryListener listener = new RecoveryListener() {
            @Override
            public void step(int step, int total, double loss) {
                steps.increment();
                shown[0].set((double) step);
                testListener.step(step, total, loss);
            }

            @Override
            public void evaluated(int step, double kl, boolean best) {
                shown[1].set(kl);
                progress.accept(String.format(Locale.ROOT, "recovering %s: step %d/%d, held-out KL %.4f%s", what, step,
                        settings.options().steps(), kl, best ? " (best)" : ""));
            }

            @Override
            public void backedOff(int step, double lr) {
                progress.accept(String.format(Locale.ROOT, "recovering %s: no better than the start after %d steps, again"
                        + " from it at learning rate %.0e", what, step, lr));
            }
        };
        RecoveryResult r = Recovery.run(dense, pruned.config(), pruned.weights(), train, heldOut, settings.options(), listener);
        progress.accept(String.format(Locale.ROOT, "recovered %s: held-out KL %.4f -> %.4f (best at step %d of %d run, %s,"
                        + " learning rate %.0e)", what, r.heldOutKlBefore(), r.heldOutKlAfter(), r.bestStep(), r.stepsRun(),
                r.stopReason().name().toLowerCase(Locale.ROOT), r.learningRate()));
        return new Recovered(new PrunedModel(pruned.config(), r.weights(), pruned.plan()), r, train.length, heldOut.length);
    }

    /** Per model and criterion: the step of the recovery under way (or last run), and its latest held-out KL. */
    @SuppressWarnings("unchecked")
    private AtomicReference<Double>[] gauges(PruneTrigger trigger) {
        return gauges.computeIfAbsent(trigger.getModel().getName() + "|" + trigger.getCriterion(), k -> {
            Tags tags = Tags.of("model", trigger.getModel().getName(), "criterion", trigger.getCriterion());
            AtomicReference<Double>[] g = new AtomicReference[] {new AtomicReference<>(0.0), new AtomicReference<>(Double.NaN)};
            // strong references: Micrometer's gauges hold their object weakly, and a registry that outlives this
            // service (a test reading it after stop, a dashboard) would read NaN once the values were collected
            Gauge.builder("hfprune_recover_step", g[0], AtomicReference::get).tags(tags).strongReference(true).register(meters);
            Gauge.builder("hfprune_recover_held_out_kl", g[1], AtomicReference::get).tags(tags).strongReference(true)
                    .register(meters);
            return g;
        });
    }
}
