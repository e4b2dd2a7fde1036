package ai.hfprune.engine.recover;

import ai.djl.training.tracker.CosineTracker;
import ai.djl.training.tracker.Tracker;
import ai.djl.training.tracker.WarmUpTracker;

/**
 * How {@link Recovery#run} trains.
 *
 * @param steps        optimizer steps (at most; early stopping may end sooner)
 * @param learningRate Adam's peak learning rate
 * @param schedule     how the learning rate moves over the steps
 * @param loraRank     0 for full fine-tuning, else the rank R of the LoRA adapters (α = 2R)
 * @param batchWindows training windows per step
 * @param evalEvery    measure the held-out KL every this many steps (and after the last)
 * @param patience     stop after this many evaluations in a row without a new best; 0 never stops early
 * @param seed         the order of the training windows and LoRA's initial A
 * @param backoffs     how many times the learning rate may be divided by 10 and training begun again from the start,
 *                     when the first held-out evaluation is no better than the start (the rate is too high for this
 *                     model: the default that suits stories260K makes stories3M diverge); 0: the rate as given
 */
public record RecoveryOptions(int steps, double learningRate, Schedule schedule, int loraRank, int batchWindows,
                              int evalEvery, int patience, long seed, int backoffs) {

    public enum Schedule {
        /** the learning rate throughout */
        CONSTANT,
        /** a linear warm-up over the first 5% of the steps, then cosine decay to a tenth of the rate at the last step */
        COSINE
    }

    public RecoveryOptions {
        if (steps < 0) {
            throw new IllegalArgumentException("steps must not be negative, got " + steps);
        }
        if (!(learningRate > 0) || Double.isInfinite(learningRate)) {
            throw new IllegalArgumentException("the learning rate must be positive, got " + learningRate);
        }
        if (loraRank < 0) {
            throw new IllegalArgumentException("the LoRA rank must be 0 (full fine-tuning) or positive, got " + loraRank);
        }
        if (batchWindows < 1 || evalEvery < 1 || patience < 0 || backoffs < 0) {
            throw new IllegalArgumentException("batchWindows and evalEvery must be at least 1, patience and backoffs at least 0");
        }
        if (schedule == null) {
            throw new IllegalArgumentException("a schedule is required");
        }
    }

    /** Held-out evaluations every this many steps by default. */
    static final int DEFAULT_EVAL_EVERY = 25;

    /**
     * Full fine-tuning as measured on stories260K (see {@code package-info.java}): Adam at 1e-3 with a cosine schedule,
     * 8 windows per step, the held-out KL every 25 steps, stopping after {@link #defaultPatience} evaluations without a
     * new best; a rate too high for the model backs off twice at most (1e-4 then 1e-5), as stories3M needs (README,
     * "Recovery").
     */
    public static RecoveryOptions defaults(int steps) {
        return new RecoveryOptions(steps, 1e-3, Schedule.COSINE, 0, 8, DEFAULT_EVAL_EVERY,
                defaultPatience(steps, DEFAULT_EVAL_EVERY), 1, 2);
    }

    /**
     * Evaluations without a new best that end training: 100 steps or a fifth of the budget, whichever is longer. A
     * fixed count stopped long budgets too early: the cosine schedule keeps the rate near its peak for the first third
     * of the steps, where the held-out KL is noisy, and stories3M with 3000 steps stopped at step 1125 with an eval KL
     * of 0.340, worse than the 0.314 of a 1500-step run that never stopped (README, "Against the targets").
     */
    static int defaultPatience(int steps, int evalEvery) {
        int patienceSteps = Math.max(100, steps / 5);
        return (patienceSteps + evalEvery - 1) / evalEvery;
    }

    /** LoRA of rank {@code rank} with the same schedule; its adapters want a 10× larger learning rate (1e-2). */
    public static RecoveryOptions lora(int steps, int rank) {
        return defaults(steps).withLoraRank(rank).withLearningRate(1e-2);
    }

    /**
     * What the command line and the pipeline ask for: full fine-tuning or LoRA of {@code rank} with its default rate
     * (backing off), or {@code learningRate} used as given when there is one.
     */
    public static RecoveryOptions of(int steps, int rank, Double learningRate) {
        RecoveryOptions o = rank > 0 ? lora(steps, rank) : defaults(steps);
        return learningRate == null ? o : o.withLearningRate(learningRate).withBackoffs(0);
    }

    public RecoveryOptions withLearningRate(double lr) {
        return new RecoveryOptions(steps, lr, schedule, loraRank, batchWindows, evalEvery, patience, seed, backoffs);
    }

    public RecoveryOptions withSteps(int n) {
        return new RecoveryOptions(n, learningRate, schedule, loraRank, batchWindows, evalEvery, patience, seed, backoffs);
    }

    public RecoveryOptions withBackoffs(int n) {
        return new RecoveryOptions(steps, learningRate, schedule, loraRank, batchWindows, evalEvery, patience, seed, n);
    }

    public RecoveryOptions withSchedule(Schedule s) {
        return new RecoveryOptions(steps, learningRate, s, loraRank, batchWindows, evalEvery, patience, seed, backoffs);
    }

    public RecoveryOptions withLoraRank(int rank) {
        return new RecoveryOptions(steps, learningRate, schedule, rank, batchWindows, evalEvery, patience, seed, backoffs);
    }

    public RecoveryOptions withBatchWindows(int b) {
        return new RecoveryOptions(steps, learningRate, schedule, loraRank, b, evalEvery, patience, seed, backoffs);
    }

    public RecoveryOptions withEvalEvery(int e) {
        return new RecoveryOptions(steps, learningRate, schedule, loraRank, batchWindows, e, patience, seed, backoffs);
    }

    public RecoveryOptions withPatience(int p) {
        return new RecoveryOptions(steps, learningRate, schedule, loraRank, batchWindows, evalEvery, p, seed, backoffs);
    }

    public RecoveryOptions withSeed(long s) {
        return new RecoveryOptions(steps, learningRate, schedule, loraRank, batchWindows, evalEvery, patience, s, backoffs);
    }

    /** The schedule as a DJL tracker; DJL's Adam asks it for step t = 1, 2, ... */
    Tracker learningRateTracker() {
        float lr = (float) learningRate;
        int warmUp = steps / 20;
        if (schedule == Schedule.CONSTANT || steps - warmUp < 1) {
            return Tracker.fixed(lr);
        }
        Tracker cosine = CosineTracker.builder().setBaseValue(lr).optFinalValue(lr / 10).setMaxUpdates(steps - warmUp)
                .build();
        return warmUp == 0 ? cosine
                : WarmUpTracker.builder().setMainTracker(cosine).optWarmUpSteps(warmUp).optWarmUpBeginValue(lr / 10)
                        .build();
    }
}
