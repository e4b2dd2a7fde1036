package ai.hfprune.engine.tokenizer;

/** Text to token ids and back. {@link #encode} adds no BOS; callers add {@link #bosId()} where a document starts. */
public interface Tokenizer {

    int[] encode(String text);

    /**
     * Decodes ids to text. BOS/EOS are not printed; the space that SentencePiece puts before the first word
     * of a document is dropped only right after a BOS, so decoding a continuation keeps its leading space.
     */
    String decode(int[] ids);

    int bosId();

    int eosId();

    int vocabSize();
}
