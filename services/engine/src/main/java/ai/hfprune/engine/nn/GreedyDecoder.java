package ai.hfprune.engine.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * Greedy decoding: the most likely next token, again and again. {@link Mode#CACHED} runs the prompt once and then
 * each new token alone against a {@link KvCache}; {@link Mode#RECOMPUTE} runs the whole sequence at every step, as
 * generation did before the cache: the reference the cache is tested and measured against.
 */
public final class GreedyDecoder {

    /** How each step computes the next token's logits. */
    public enum Mode { CACHED, RECOMPUTE }

    private GreedyDecoder() {
    }

    /**
     * Continues {@code prefix} until the sequence has {@code limit} tokens or the model produces {@code eosId}.
     *
     * @param onToken told each new token as soon as it is chosen (EOS is not passed on)
     * @return the new tokens, without the prefix and without EOS
     */
    public static int[] generate(LlamaModel model, int[] prefix, int limit, int eosId, Mode mode, IntConsumer onToken) {
        if (prefix.length == 0) {
            throw new IllegalArgumentException("generation needs at least one token to start from (BOS)");
        }
        int[] ids = Arrays.copyOf(prefix, Math.max(limit, prefix.length));
        int length = prefix.length;
        try (KvCache cache = mode == Mode.CACHED && limit > prefix.length ? model.newKvCache(limit) : null) {
            int fed = 0; // tokens already in the cache
            while (length < limit) {
                // with the cache: the prompt once, then each new token alone
                int next = cache == null ? argMaxLast(model, Arrays.copyOf(ids, length), null)
                        : fed == 0 ? argMaxLast(model, Arrays.copyOf(ids, length), cache)
                        : argMaxAfter(model, ids[length - 1], cache);
                fed = length;
                if (next == eosId) {
                    break;
                }
                ids[length++] = next;
                onToken.accept(next);
            }
        }
        return Arrays.copyOfRange(ids, prefix.length, length);
    }

    /** The most likely token after {@code token}, fed after the cached ones: the argmax is taken on the engine. */
    private static int argMaxAfter(LlamaModel model, int token, KvCache cache) {
        try (NDManager step = model.manager().newSubManager()) {
            return (int) model.decode(token, cache, step).argMax().getLong();
        }
    }

    /** The most likely token after {@code ids}: the whole sequence without a cache, the tokens after it with one. */
    private static int argMaxLast(LlamaModel model, int[] ids, KvCache cache) {
        try (NDManager step = model.manager().newSubManager()) {
            long[] longs = Arrays.stream(ids).asLongStream().toArray();
            NDArray input = step.create(longs, new Shape(1, longs.length));
            NDArray logits = cache != null ? model.forward(input, cache) : model.forward(input, ActivationTap.NONE);
            return (int) logits.get("0, -1, :").argMax().getLong();
        }
    }
}
