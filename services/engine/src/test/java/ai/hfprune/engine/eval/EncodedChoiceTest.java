package ai.hfprune.engine.eval;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.engine.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The harness' _encode_pair with stories260K's SentencePiece tokenizer. */
class EncodedChoiceTest {

    @Test
    void continuationIsWholeAfterContextTokens() {
        try (Checkpoint checkpoint = Checkpoint.open(Assets.stories260K())) {
            Tokenizer tok = checkpoint.tokenizer();
            String context = "Question: Is the sky blue?\nAnswer: ";
            EncodedChoice e = EncodedChoice.encode(tok, context, "yes", 512);

            int[] ctx = withBos(tok, "Question: Is the sky blue?\nAnswer:"); // the trailing space moved to the continuation
            int[] whole = withBos(tok, "Question: Is the sky blue?\nAnswer: yes");
            assertEquals(whole.length - ctx.length, e.continuationLength());
            assertArrayEquals(ctx, Arrays.copyOf(e.tokens(), ctx.length));
            assertArrayEquals(Arrays.copyOfRange(whole, ctx.length, whole.length),
                    Arrays.copyOfRange(e.tokens(), ctx.length, e.tokens().length));
            assertEquals(" yes", tok.decode(Arrays.copyOfRange(e.tokens(), ctx.length, e.tokens().length)));

            // left truncation keeps the last maxLength + 1 tokens: the model reads maxLength of them
            EncodedChoice cut = EncodedChoice.encode(tok, context, "yes", 6);
            assertEquals(7, cut.tokens().length);
            assertEquals(6, cut.inputLength());
            assertArrayEquals(Arrays.copyOfRange(e.tokens(), e.tokens().length - 7, e.tokens().length), cut.tokens());
            assertEquals(e.continuationLength(), cut.continuationLength());
        }
    }

    @Test
    void continuationWithoutTokensOrTooLongIsRejected() {
        CharTokenizer tok = new CharTokenizer(40);
        assertThrows(HfpruneException.class, () -> EncodedChoice.encode(tok, "abc", "", 16));
        assertThrows(HfpruneException.class, () -> EncodedChoice.encode(tok, "abc", "0123456789", 8));
    }

    private static int[] withBos(Tokenizer tok, String text) {
        int[] ids = tok.encode(text);
        int[] out = new int[ids.length + 1];
        out[0] = tok.bosId();
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }
}
