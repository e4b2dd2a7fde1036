package ai.hfprune.engine.recover;

import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.jni.JniUtils;
import ai.hfprune.engine.ProcessMemory;
import ai.hfprune.engine.eval.Evaluator;
import ai.hfprune.engine.eval.WindowMetrics;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.recover.RecoveryOptions.Schedule;
import org.junit.jupiter.api.Test;

import java.util.Locale;

/**
 * Not a test (its name keeps it out of the suite): the measurements behind the recovery defaults, run by hand with
 * {@code mvn -o -pl services/engine test -Dtest=RecoveryBenchmark -Dbench.runs=0:1e-3:300,8:3e-3:500 -Dbench.threads=1}
 * (runs are rank:learning rate:steps; other knobs: bench.criterion, bench.schedule, bench.batch, bench.evalEvery).
 * stories260K pruned 20% MLP (uniform, {@code bench.criterion} scores on 64 windows), trained on 256 windows of
 * train-head-2MiB.txt with the next 16 held out, evaluated on the first 512 windows of valid-hf-head.txt (T = 128).
 */
class RecoveryBenchmark {

    /** rank:learning rate:steps of each run */
    private static final String DEFAULT_RUNS = "0:1e-3:300,0:1e-3:500,8:3e-3:300,8:3e-3:500";

    /** The same, outside Maven, e.g. with a small heap so that resident memory shows native growth only. */
    public static void main(String[] args) {
        new RecoveryBenchmark().measure();
    }

    @Test
    void measure() {
        Engine.getEngine("PyTorch");
        JniUtils.setNumThreads(Integer.getInteger("bench.threads", JniUtils.getNumThreads()));
        System.out.printf("PyTorch intra-op threads: %d%n", JniUtils.getNumThreads());
        long setup = System.nanoTime();
        Criterion criterion = Criterion.parse(System.getProperty("bench.criterion", "activation"));
        int seqLen = 128;
        try (Stories260KPruned s = new Stories260KPruned(criterion, 0.2, 64, seqLen)) {
            int[][] calibration = s.trainWindows(256 + 16, seqLen);
            int[][] train = Stories260KPruned.head(calibration, 256);
            int[][] heldOut = Stories260KPruned.tail(calibration, 16);
            int[][] valid = s.validWindows(512, seqLen);
            System.out.printf(Locale.ROOT, "scoring, pruning and reading windows: %.1f s%n", (System.nanoTime() - setup) / 1e9);
            WindowMetrics before = evaluate(s, s.pruned.weights(), valid);
            System.out.printf(Locale.ROOT, "criterion %s: valid KL %.4f ppl %.3f before recovery; dense ppl %.3f%n",
                    criterion.id(), before.fidelity().kl(), before.perplexity().perplexity(),
                    Evaluator.perplexity(s.teacher, valid, 16).perplexity());
            for (String spec : System.getProperty("bench.runs", DEFAULT_RUNS).split(",")) {
                String[] f = spec.split(":"); // rank:lr:steps
                RecoveryOptions o = RecoveryOptions.defaults(Integer.parseInt(f[2]))
                        .withLoraRank(Integer.parseInt(f[0]))
                        .withLearningRate(Double.parseDouble(f[1]))
                        .withSchedule(Schedule.valueOf(System.getProperty("bench.schedule", "COSINE")))
                        .withBatchWindows(Integer.getInteger("bench.batch", 8))
                        .withEvalEvery(Integer.getInteger("bench.evalEvery", 25));
                run(s, o, train, heldOut, valid);
            }
        }
    }

    private static void run(Stories260KPruned s, RecoveryOptions o, int[][] train, int[][] heldOut, int[][] valid) {
        long rssBefore = ProcessMemory.residentBytes().orElse(-1);
        long[] rssAt = new long[3];
        long start = System.nanoTime();
        RecoveryResult r = Recovery.run(s.teacher, s.pruned.config(), s.pruned.weights(), train, heldOut, o,
                new RecoveryListener() {
                    @Override
                    public void evaluated(int step, double kl, boolean best) {
                        long rss = ProcessMemory.residentBytes().orElse(-1);
                        if (step == o.evalEvery()) {
                            rssAt[0] = rss;
                        } else if (step == o.steps() / 2 / o.evalEvery() * o.evalEvery()) {
                            rssAt[1] = rss;
                        }
                        rssAt[2] = rss;
                        System.out.printf(Locale.ROOT, "  step %4d held-out KL %.4f%s RSS %d MiB%n", step, kl,
                                best ? " *" : "", rss >> 20);
                    }
                });
        double seconds = (System.nanoTime() - start) / 1e9;
        WindowMetrics after = evaluate(s, r.weights(), valid);
        System.out.printf(Locale.ROOT, "RESULT rank %d lr %.1e %s batch %d steps %d: held-out KL %.4f -> %.4f (best "
                        + "step %d, %s); valid KL %.4f ppl %.3f; %.1f s, %.2f steps/s; RSS before %d MiB, peak %d MiB;"
                        + " RSS at first/middle/last evaluation %d/%d/%d MiB%n",
                o.loraRank(), o.learningRate(), o.schedule(), o.batchWindows(), r.stepsRun(), r.heldOutKlBefore(),
                r.heldOutKlAfter(), r.bestStep(), r.stopReason(), after.fidelity().kl(), after.perplexity().perplexity(),
                seconds, r.stepsRun() / seconds, rssBefore >> 20, r.peakRssBytes() >> 20, rssAt[0] >> 20, rssAt[1] >> 20,
                rssAt[2] >> 20);
    }

    private static WindowMetrics evaluate(Stories260KPruned s, TensorSource weights, int[][] valid) {
        try (LlamaModel m = LlamaModel.load(s.pruned.config(), weights, LlamaModel.defaultDevice(), DataType.FLOAT32)) {
            return Evaluator.evaluate(m, s.teacher, valid, 16, done -> { });
        }
    }
}
