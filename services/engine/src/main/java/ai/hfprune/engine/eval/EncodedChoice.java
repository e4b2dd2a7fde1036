package ai.hfprune.engine.eval;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.tokenizer.Tokenizer;

import java.util.Arrays;

/**
 * A context and continuation as token ids, encoded the way lm-evaluation-harness does ({@code _encode_pair}):
 * trailing whitespace of the context moves to the start of the continuation; BOS + context and
 * BOS + context + continuation are encoded separately, and the continuation's tokens are the tokens of the
 * whole after as many tokens as the context has. When the sequence is longer than the model's context it is
 * left-truncated (the oldest context tokens, BOS first, are dropped), as the harness does.
 *
 * @param tokens             context then continuation tokens; the model reads all but the last
 * @param continuationLength how many of the last tokens are the continuation, scored by log-probability
 */
public record EncodedChoice(int[] tokens, int continuationLength) {

    /** @param maxLength the longest input the model accepts (its context size) */
    public static EncodedChoice encode(Tokenizer tokenizer, String context, String continuation, int maxLength) {
        String ctx = context.stripTrailing();
        String cont = context.substring(ctx.length()) + continuation;
        int[] contextIds = withBos(tokenizer, ctx);
        int[] whole = withBos(tokenizer, ctx + cont);
        int continuationLength = whole.length - contextIds.length;
        if (continuationLength <= 0) {
            throw new HfpruneException("the continuation \"" + cont + "\" adds no token to its context \"" + ctx + "\"");
        }
        if (continuationLength > maxLength) {
            throw new HfpruneException("a continuation of " + continuationLength + " tokens does not fit the model's context of "
                    + maxLength + " tokens: \"" + cont + "\"");
        }
        int[] tokens = Arrays.copyOf(contextIds, contextIds.length + continuationLength);
        System.arraycopy(whole, contextIds.length, tokens, contextIds.length, continuationLength);
        if (tokens.length > maxLength + 1) { // the model reads tokens[0..n-2]: at most maxLength of them
            tokens = Arrays.copyOfRange(tokens, tokens.length - maxLength - 1, tokens.length);
        }
        return new EncodedChoice(tokens, continuationLength);
    }

    private static int[] withBos(Tokenizer tokenizer, String text) {
        int[] encoded = tokenizer.encode(text);
        int[] out = new int[encoded.length + 1];
        out[0] = tokenizer.bosId();
        System.arraycopy(encoded, 0, out, 1, encoded.length);
        return out;
    }

    /** Tokens the model reads: all but the last. */
    public int inputLength() {
        return tokens.length - 1;
    }
}
