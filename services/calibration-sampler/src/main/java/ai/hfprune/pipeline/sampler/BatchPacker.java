package ai.hfprune.pipeline.sampler;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.data.WindowPacker;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.tokenizer.Tokenizer;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.TokenBatch;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * The sampler's packing, without Kafka: documents in, {@link TokenBatch}es out, exactly as {@code hfprune score}
 * packs them ({@link CalibrationData#windows} then {@link CalibrationData#batches}).
 *
 * <p>Each document is trimmed (empty ones are skipped, as {@link CalibrationData#splitDocuments} does), checked
 * against the sha256 of every document seen before (a repeat is skipped, the set lives in memory), and appended to
 * one token stream by a {@link WindowPacker}: BOS + tokens, consecutive windows of T. Every B windows make a batch.
 * Tokens after the last complete window wait for the next document; {@link #finish} ends a finite run: the
 * windows of an unfilled batch go out as a last, smaller batch and the carried tokens are dropped. With
 * {@code maxWindows > 0} nothing beyond that many windows is ever packed (the cap of a file run).
 *
 * <p>A batch's id is the sha256 (hex) of the model's sha256, T and the token ids ({@link #batchId}): the same
 * windows always get the same id, so the aggregator recognises a re-sent batch.
 *
 * <p>Not thread-safe: one sampler thread owns it.
 */
public final class BatchPacker {

    /** What became of a document. */
    public enum Outcome {
        /** packed into the stream */
        SENT,
        /** its text was seen before: skipped */
        DUPLICATE,
        /** nothing but white space: skipped */
        EMPTY,
        /** the window cap was reached before it: not read */
        CAPPED;

        public String tag() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    private final ModelId model;
    private final int seqLen;
    private final int batchWindows;
    private final List<String> criteria;
    private final int maxWindows;
    private final LongSupplier clock;
    private final WindowPacker packer;
    private final Set<ByteBuffer> seen = new HashSet<>();
    private final List<int[]> pending = new ArrayList<>();
    private long windowsPacked;
    private long windowsInBatches;
    private long sequence;
    private String lastSource = "";

    /**
     * @param criteria   criteria ids for the batches; each must be a known {@link Criterion}
     * @param maxWindows stop after this many windows (≤ 0: no cap)
     */
    public BatchPacker(ModelId model, Tokenizer tokenizer, int seqLen, int batchWindows, List<String> criteria, int maxWindows,
                       LongSupplier clock) {
        if (seqLen < 2) {
            throw new HfpruneException("seq.len must be at least 2, got " + seqLen);
        }
        if (batchWindows < 1) {
            throw new HfpruneException("batch.windows must be at least 1, got " + batchWindows);
        }
        this.model = model;
        this.seqLen = seqLen;
        this.batchWindows = batchWindows;
        this.criteria = criteriaIds(criteria);
        this.maxWindows = maxWindows;
        this.clock = clock;
        this.packer = new WindowPacker(tokenizer, seqLen);
    }

    public BatchPacker(ModelId model, Tokenizer tokenizer, int seqLen, int batchWindows, List<String> criteria, int maxWindows) {
        this(model, tokenizer, seqLen, batchWindows, criteria, maxWindows, System::currentTimeMillis);
    }

    /** The criteria as ids ({@code entropy}, ...), each once, in the given order. */
    public static List<String> criteriaIds(List<String> criteria) {
        Set<String> ids = new LinkedHashSet<>();
        for (String c : criteria) {
            if (!c.isBlank()) {
                ids.add(Criterion.parse(c).id());
            }
        }
        if (ids.isEmpty()) {
            throw new HfpruneException("no criteria given (criteria is empty)");
        }
        return List.copyOf(ids);
    }

    /**
     * Packs one document; every batch it completes goes to {@code out}, in order.
     *
     * @param source where the document came from (a file name or a topic): the {@code source} of the batches it completes
     */
    public Outcome add(String document, String source, Consumer<TokenBatch> out) {
        if (capped()) {
            return Outcome.CAPPED;
        }
        String doc = document == null ? "" : document.strip();
        if (doc.isEmpty()) {
            return Outcome.EMPTY;
        }
        if (!seen.add(ByteBuffer.wrap(sha256(doc.getBytes(StandardCharsets.UTF_8))))) {
            return Outcome.DUPLICATE;
        }
        lastSource = source;
        for (int[] window : packer.addDocument(doc)) {
            if (capped()) {
                break;
            }
            pending.add(window);
            windowsPacked++;
            if (pending.size() == batchWindows) {
                out.accept(emit(source));
            }
        }
        return Outcome.SENT;
    }

    /** Ends a finite run: the windows of an unfilled batch go out as a smaller batch; carried tokens are dropped. */
    public void finish(Consumer<TokenBatch> out) {
        if (!pending.isEmpty()) {
            out.accept(emit(lastSource));
        }
    }

    /** Whether the window cap is reached: further documents are not read. */
    public boolean capped() {
        return maxWindows > 0 && windowsPacked >= maxWindows;
    }

    /** Windows cut from the stream (and kept) so far. */
    public long windowsPacked() {
        return windowsPacked;
    }

    /** Windows handed out in batches so far. */
    public long windowsInBatches() {
        return windowsInBatches;
    }

    /** Tokens appended to the stream so far (BOS included); in follow mode, stream position of the next document. */
    public long streamTokens() {
        return packer.totalTokens();
    }

    /** Batches handed out so far; the {@code sequence} of the next one. */
    public long batches() {
        return sequence;
    }

    public int seqLen() {
        return seqLen;
    }

    public List<String> criteria() {
        return criteria;
    }

    private TokenBatch emit(String source) {
        int[][] windows = pending.toArray(new int[0][]);
        pending.clear();
        List<List<Integer>> lists = new ArrayList<>(windows.length);
        for (int[] w : windows) {
            List<Integer> ids = new ArrayList<>(w.length);
            for (int id : w) {
                ids.add(id);
            }
            lists.add(ids);
        }
        windowsInBatches += windows.length;
        return TokenBatch.newBuilder()
                .setBatchId(batchId(model.getSha256(), seqLen, windows))
                .setModel(ModelId.newBuilder(model).build())
                .setCriteria(new ArrayList<>(criteria))
                .setSeqLen(seqLen)
                .setWindows(lists)
                .setSequence(sequence++)
                .setCreatedAtMillis(clock.getAsLong())
                .setSource(source == null ? "" : source)
                .build();
    }

    /** sha256 (hex) of the model's sha256 (UTF-8), a 0 byte, T (4 bytes big-endian) and every token id (4 bytes big-endian). */
    public static String batchId(String modelSha256, int seqLen, int[][] windows) {
        MessageDigest digest = newDigest();
        digest.update(modelSha256.getBytes(StandardCharsets.UTF_8));
        digest.update((byte) 0);
        ByteBuffer buf = ByteBuffer.allocate(4);
        digest.update(buf.putInt(0, seqLen).array());
        for (int[] window : windows) {
            for (int id : window) {
                digest.update(buf.putInt(0, id).array());
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    /** The token ids of a batch as arrays. */
    public static int[][] windows(TokenBatch batch) {
        int[][] out = new int[batch.getWindows().size()][];
        for (int w = 0; w < out.length; w++) {
            List<Integer> ids = batch.getWindows().get(w);
            out[w] = new int[ids.size()];
            for (int t = 0; t < out[w].length; t++) {
                out[w][t] = ids.get(t);
            }
        }
        return out;
    }

    static byte[] sha256(byte[] bytes) {
        return newDigest().digest(bytes);
    }

    private static MessageDigest newDigest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
