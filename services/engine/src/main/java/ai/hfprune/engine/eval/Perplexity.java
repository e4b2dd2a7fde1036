package ai.hfprune.engine.eval;

/**
 * Next-token negative log-likelihood summed in float64 over {@code tokens} predicted tokens.
 * Sums rather than means, so results of separate batches (or workers) add up exactly.
 */
public record Perplexity(double nllSum, long tokens) {

    public static final Perplexity ZERO = new Perplexity(0, 0);

    public Perplexity plus(Perplexity other) {
        return new Perplexity(nllSum + other.nllSum, tokens + other.tokens);
    }

    /** Mean NLL in nats per predicted token. */
    public double meanNll() {
        return nllSum / tokens;
    }

    /** exp(mean NLL). */
    public double perplexity() {
        return Math.exp(meanNll());
    }
}
