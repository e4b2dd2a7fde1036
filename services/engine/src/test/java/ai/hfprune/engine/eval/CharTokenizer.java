package ai.hfprune.engine.eval;

import ai.hfprune.engine.tokenizer.Tokenizer;

/** One token per character (ids 3..vocab-1, wrapping), BOS 1, EOS 2: token boundaries never move when texts are joined. */
final class CharTokenizer implements Tokenizer {

    private final int vocab;

    CharTokenizer(int vocab) {
        this.vocab = vocab;
    }

    @Override
    public int[] encode(String text) {
        return text.chars().map(c -> 3 + c % (vocab - 3)).toArray();
    }

    @Override
    public String decode(int[] ids) {
        throw new UnsupportedOperationException("not needed by these tests");
    }

    @Override
    public int bosId() {
        return 1;
    }

    @Override
    public int eosId() {
        return 2;
    }

    @Override
    public int vocabSize() {
        return vocab;
    }
}
