package ai.hfprune.engine.eval;

/** What {@link Evaluator#evaluate} measures on a set of windows; {@code fidelity} is null without a reference. */
public record WindowMetrics(Perplexity perplexity, Fidelity fidelity) {
}
