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
        TrainingBatches batches = new TrainingBatches(trainWindows.length, options.batchWindows(), options.seed());
        long rssBefore = ProcessMemory.residentBytes().orElse(-1);
        ProcessMemory.resetPeak();
        try (Adaptation student = Adaptation.of(prunedConfig, prunedWeights, teacher.manager().getDevice(),
                teacher.dataType(), options.loraRank(), options.seed());
             ClosableAdam adam = new ClosableAdam(Optimizer.adam().optLearningRateTracker(options.learningRateTracker()));
             TeacherTargets train = TeacherTargets.of(teacher, trainWindows, options.batchWindows(),
                     TeacherTargets.DEFAULT_BUDGET_BYTES);
             TeacherTargets heldOut = TeacherTargets.of(teacher, heldOutWindows, options.batchWindows(),
                     TeacherTargets.DEFAULT_BUDGET_BYTES / 8)) {
            Evaluator.requireSameVocabulary(student.model(), teacher);
            DistillationTrainer trainer = new DistillationTrainer(train, student, adam);
            double before = HeldOutKl.of(heldOut, student, options.batchWindows());
            listener.evaluated(0, before, true);
            Best best = new Best(prunedWeights, before, 0);
            int step = 0;
            int sinceBest = 0;
            StopReason reason = StopReason.COMPLETED;
            while (step < options.steps()) {
                double loss = trainer.step(batches.next());
                step++;
                listener.step(step, options.steps(), loss);
                if (!Double.isFinite(loss)) {
                    reason = StopReason.DIVERGED;
                    break;
                }
                if (step % options.evalEvery() == 0 || step == options.steps()) {
                    double kl = HeldOutKl.of(heldOut, student, options.batchWindows());
                    boolean improved = kl < best.kl; // NaN never improves
                    listener.evaluated(step, kl, improved);
                    if (improved) {
                        best = new Best(student.export(), kl, step);
                        sinceBest = 0;
                    } else if (options.patience() > 0 && ++sinceBest >= options.patience()) {
                        reason = StopReason.NO_IMPROVEMENT;
                        break;
                    }
                }
            }
            return new RecoveryResult(best.weights, before, best.kl, step, best.step, reason, rssBefore,
                    ProcessMemory.peakResidentBytes().orElse(-1));
        }
    }

    /** The best weights so far: exported copies (Java arrays), so later steps cannot change them. */
    private record Best(TensorSource weights, double kl, int step) {
    }
}
