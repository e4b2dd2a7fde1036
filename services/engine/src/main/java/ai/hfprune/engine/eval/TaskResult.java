package ai.hfprune.engine.eval;

/**
 * Accuracy on a zero-shot task over {@code n} questions, with the standard error of each accuracy as
 * lm-evaluation-harness reports it (the sample standard deviation of the 0/1 outcomes over √n, that is
 * √(p(1−p)/(n−1)); NaN for n < 2).
 *
 * @param acc     fraction of questions whose gold choice has the highest continuation log-probability
 * @param accNorm the same with each log-probability divided by the choice's length in UTF-8 bytes
 */
public record TaskResult(String name, int n, double acc, double accStderr, double accNorm, double accNormStderr) {

    public static TaskResult of(String name, boolean[] correct, boolean[] correctNorm) {
        double acc = mean(correct);
        double accNorm = mean(correctNorm);
        int n = correct.length;
        return new TaskResult(name, n, acc, stderr(acc, n), accNorm, stderr(accNorm, n));
    }

    private static double mean(boolean[] outcomes) {
        int hits = 0;
        for (boolean o : outcomes) {
            hits += o ? 1 : 0;
        }
        return (double) hits / outcomes.length;
    }

    static double stderr(double p, int n) {
        return n < 2 ? Double.NaN : Math.sqrt(p * (1 - p) / (n - 1));
    }
}
