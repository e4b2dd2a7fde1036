package ai.hfprune.engine.recover;

import ai.djl.training.optimizer.Optimizer;
import ai.hfprune.engine.ProcessMemory;
import ai.hfprune.engine.eval.Evaluator;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.recover.RecoveryResult.StopReason;

/**
 * Recovery by self-distillation: trains a pruned model to match the dense model's next-token distributions
 * (KL(dense ‖ pruned), {@link DistillationLoss}) with DJL's Adam, either every weight or LoRA adapters merged at the
 * end, and returns the weights that did best on windows held out from training: the held-out KL is measured before
 * the first step and every {@code evalEvery} steps, and the best weights seen (the starting ones included) are kept,
 * so recovery never returns a model worse on the held-out windows than the one it was given.
 *
 * <p>A learning rate too high for the model shows at the first evaluation: no better than the start. With
 * {@code backoffs} left, training then begins again from the start at a tenth of the rate, within the same budget of
 * steps (the steps already run count).
 */
public final class Recovery {
    private Recovery() {
    }

    /**
     * @param teacher        the dense model, forward passes only; the student is loaded in its data type
     * @param prunedWeights  the pruned model (e.g. {@code PrunedModel.weights()}); not modified
     * @param trainWindows   windows the student is trained on, cycled in seeded shuffled batches
     * @param heldOutWindows windows not in {@code trainWindows}, for early stopping; at least one
     */
    public static RecoveryResult run(LlamaModel teacher, ModelConfig prunedConfig, TensorSource prunedWeights,
                                     int[][] trainWindows, int[][] heldOutWindows, RecoveryOptions options,
                                     RecoveryListener listener) {
        if (heldOutWindows.length == 0) {
            throw new IllegalArgumentException("recovery needs held-out windows: without them it cannot tell whether "
                    + "training helped");
        }
        long rssBefore = ProcessMemory.residentBytes().orElse(-1);
        ProcessMemory.resetPeak();
        try (TeacherTargets train = TeacherTargets.of(teacher, trainWindows, options.batchWindows(),
                TeacherTargets.DEFAULT_BUDGET_BYTES);
             TeacherTargets heldOut = TeacherTargets.of(teacher, heldOutWindows, options.batchWindows(),
                     TeacherTargets.DEFAULT_BUDGET_BYTES / 8)) {
            RecoveryOptions attempt = options;
            int stepsRun = 0;
            int backoffsLeft = options.backoffs();
            while (true) {
                Attempt a = attempt(teacher, prunedConfig, prunedWeights, train, heldOut, trainWindows.length, attempt,
                        stepsRun, backoffsLeft > 0, listener);
                stepsRun += a.steps;
                if (!a.tooHigh || backoffsLeft == 0 || stepsRun >= options.steps()) {
                    return new RecoveryResult(a.best.weights, a.before, a.best.kl, stepsRun, a.best.step, a.reason,
                            attempt.learningRate(), rssBefore, ProcessMemory.peakResidentBytes().orElse(-1));
                }
                backoffsLeft--;
                attempt = attempt.withLearningRate(attempt.learningRate() / 10).withSteps(options.steps() - stepsRun);
                listener.backedOff(stepsRun, attempt.learningRate());
            }
        }
    }

    /**
     * One run of training from the pruned weights.
     *
     * @param offset     steps run by earlier attempts: steps are reported to the listener counted from the first attempt
     * @param mayBackOff end at the first evaluation if it is no better than the start
     */
    private static Attempt attempt(LlamaModel teacher, ModelConfig prunedConfig, TensorSource prunedWeights,
                                   TeacherTargets train, TeacherTargets heldOut, int trainWindows, RecoveryOptions options,
                                   int offset, boolean mayBackOff, RecoveryListener listener) {
        int total = offset + options.steps();
        TrainingBatches batches = new TrainingBatches(trainWindows, options.batchWindows(), options.seed());
        try (Adaptation student = Adaptation.of(prunedConfig, prunedWeights, teacher.manager().getDevice(),
                teacher.dataType(), options.loraRank(), options.seed());
             ClosableAdam adam = new ClosableAdam(Optimizer.adam().optLearningRateTracker(options.learningRateTracker()))) {
            Evaluator.requireSameVocabulary(student.model(), teacher);
            DistillationTrainer trainer = new DistillationTrainer(train, student, adam);
            double before = HeldOutKl.of(heldOut, student, options.batchWindows());
            if (offset == 0) {
                listener.evaluated(0, before, true);
            }
            Best best = new Best(prunedWeights, before, 0);
            int step = 0;
            int sinceBest = 0;
            StopReason reason = StopReason.COMPLETED;
            while (step < options.steps()) {
                double loss = trainer.step(batches.next());
                step++;
                listener.step(offset + step, total, loss);
                if (!Double.isFinite(loss)) {
                    return new Attempt(best, before, step, StopReason.DIVERGED, mayBackOff && best.step == 0);
                }
                if (step % options.evalEvery() == 0 || step == options.steps()) {
                    double kl = HeldOutKl.of(heldOut, student, options.batchWindows());
                    boolean improved = kl < best.kl; // NaN never improves
                    listener.evaluated(offset + step, kl, improved);
                    if (improved) {
                        best = new Best(student.export(), kl, offset + step);
                        sinceBest = 0;
                    } else if (mayBackOff && best.step == 0) {
                        return new Attempt(best, before, step, StopReason.NO_IMPROVEMENT, true);
                    } else if (options.patience() > 0 && ++sinceBest >= options.patience()) {
                        reason = StopReason.NO_IMPROVEMENT;
                        break;
                    }
                }
            }
            return new Attempt(best, before, step, reason, false);
        }
    }

    /**
     * @param steps  steps this attempt ran
     * @param tooHigh whether it ended because its first evaluation (or a diverged loss before it) showed the rate too high
     */
    private record Attempt(Best best, double before, int steps, StopReason reason, boolean tooHigh) {
    }

    /** The best weights so far: exported copies (Java arrays), so later steps cannot change them. */
    private record Best(TensorSource weights, double kl, int step) {
    }
}
