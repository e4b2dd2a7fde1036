package ai.hfprune.engine.data;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * The streaming form of {@link CalibrationData#windows}: documents go in one at a time, each encoded as BOS
 * followed by its tokens and appended to one concatenated token stream, which is cut into consecutive,
 * non-overlapping windows of exactly T tokens. The tokens after the last complete window are carried over to the
 * next document ({@link #carried()}); a finite run drops them at its end. {@code hfprune score} and the
 * calibration-sampler both pack through this class, so their windows are the same for the same documents.
 */
public final class WindowPacker {

    private final Tokenizer tokenizer;
    private final int seqLen;
    private int[] current;
    private int filled;
    private long totalTokens;
    private long windows;

    /** @param tokenizer may be null when only {@link #addTokens} is used */
    public WindowPacker(Tokenizer tokenizer, int seqLen) {
        if (seqLen < 1) {
            throw new HfpruneException("window length must be at least 1, got " + seqLen);
        }
        this.tokenizer = tokenizer;
        this.seqLen = seqLen;
        this.current = new int[seqLen];
    }

    /** BOS followed by the document's tokens (the document is encoded as given: no trimming). */
    public int[] encode(String document) {
        int[] encoded = tokenizer.encode(document);
        int[] tokens = new int[encoded.length + 1];
        tokens[0] = tokenizer.bosId();
        System.arraycopy(encoded, 0, tokens, 1, encoded.length);
        return tokens;
    }

    /** Encodes and appends one document; returns the windows it completed (possibly none), in stream order. */
    public List<int[]> addDocument(String document) {
        return addTokens(encode(document));
    }

    /** Appends already encoded tokens (BOS included by the caller); returns the windows they completed. */
    public List<int[]> addTokens(int[] tokens) {
        List<int[]> out = new ArrayList<>();
        totalTokens += tokens.length;
        for (int token : tokens) {
            current[filled++] = token;
            if (filled == seqLen) {
                out.add(current);
                windows++;
                current = new int[seqLen];
                filled = 0;
            }
        }
        return out;
    }

    public int seqLen() {
        return seqLen;
    }

    /** Tokens of the stream so far that are not in a complete window yet. */
    public int carried() {
        return filled;
    }

    /** Every token appended so far, BOS included. */
    public long totalTokens() {
        return totalTokens;
    }

    /** Complete windows cut so far. */
    public long windows() {
        return windows;
    }
}
