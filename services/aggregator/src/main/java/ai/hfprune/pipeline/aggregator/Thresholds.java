package ai.hfprune.pipeline.aggregator;

/** When coverage triggers a prune: at {@code minTokens}, then every {@code everyTokens} more. */
record Thresholds(long minTokens, long everyTokens) {

    Thresholds {
        if (minTokens < 1 || everyTokens < 1) {
            throw new IllegalArgumentException("coverage thresholds must be positive: " + minTokens + ", " + everyTokens);
        }
    }

    /** The first threshold above {@code tokens}. */
    long next(long tokens) {
        return tokens < minTokens ? minTokens : minTokens + ((tokens - minTokens) / everyTokens + 1) * everyTokens;
    }

    /** The threshold that a move from {@code before} to {@code after} tokens crosses, or -1. */
    long crossed(long before, long after) {
        if (after < minTokens) {
            return -1;
        }
        long stepAfter = (after - minTokens) / everyTokens;
        if (before < minTokens) {
            return minTokens + stepAfter * everyTokens;
        }
        long stepBefore = (before - minTokens) / everyTokens;
        return stepAfter > stepBefore ? minTokens + stepAfter * everyTokens : -1;
    }
}
