package ai.hfprune.engine.data;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.TextFiles;
import ai.hfprune.engine.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Calibration windows, built the same way by {@code hfprune score}, the calibration-sampler and {@code eval}:
 * a {@code .txt} file is split into documents at lines that read {@code <|endoftext|>}; each document
 * (trimmed; empty ones skipped) is encoded as BOS followed by its tokens; the documents are concatenated into
 * one stream, cut into consecutive non-overlapping windows of exactly T tokens, and the remainder is dropped.
 * A {@code .json} file is an array of windows (arrays of token ids), used verbatim.
 */
public final class CalibrationData {

    public static final String END_OF_TEXT = "<|endoftext|>";

    private CalibrationData() {
    }

    /** Splits text into documents at {@code <|endoftext|>} lines. */
    public static List<String> splitDocuments(String text) {
        List<String> docs = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        for (String line : text.split("\n", -1)) {
            if (line.strip().equals(END_OF_TEXT)) {
                addDocument(docs, current);
                current.setLength(0);
            } else {
                current.append(line).append('\n');
            }
        }
        addDocument(docs, current);
        return docs;
    }

    private static void addDocument(List<String> docs, StringBuilder text) {
        String doc = text.toString().strip();
        if (!doc.isEmpty()) {
            docs.add(doc);
        }
    }

    public static List<String> readDocuments(Path file) {
        List<String> docs = splitDocuments(TextFiles.readUtf8(file, "data file"));
        if (docs.isEmpty()) {
            throw new HfpruneException("data file " + file + " contains no text");
        }
        return docs;
    }

    /**
     * Reads calibration windows of {@code seqLen} tokens from a {@code .txt} or {@code .json} file.
     *
     * @param tokenizer  asked for only when the file is text
     * @param maxWindows stop after this many windows (≤ 0: all); only the documents needed are encoded
     */
    public static int[][] readWindows(Path file, java.util.function.Supplier<Tokenizer> tokenizer, int vocabSize, int seqLen,
                                      int maxWindows) {
        if (seqLen < 2) {
            throw new HfpruneException("--seq-len must be at least 2, got " + seqLen);
        }
        if (Files.isDirectory(file)) {
            throw new HfpruneException("data file " + file + " is a directory; give one .txt or .json file");
        }
        if (!Files.isRegularFile(file)) {
            throw new HfpruneException("data file " + file + " does not exist");
        }
        if (file.getFileName().toString().endsWith(".json")) {
            return jsonWindows(file, vocabSize, seqLen, maxWindows);
        }
        return windows(readDocuments(file), tokenizer.get(), seqLen, maxWindows, file.toString());
    }

    /** Packs documents into windows as the class comment says (through a {@link WindowPacker}). */
    public static int[][] windows(List<String> documents, Tokenizer tokenizer, int seqLen, int maxWindows, String source) {
        List<int[]> windows = new ArrayList<>();
        WindowPacker packer = new WindowPacker(tokenizer, seqLen);
        for (String doc : documents) {
            windows.addAll(packer.addDocument(doc));
            if (maxWindows > 0 && windows.size() >= maxWindows) {
                return windows.subList(0, maxWindows).toArray(new int[0][]);
            }
        }
        if (windows.isEmpty()) {
            throw new HfpruneException(source + " has " + packer.totalTokens() + " tokens, fewer than one window of --seq-len "
                    + seqLen);
        }
        return windows.toArray(new int[0][]);
    }

    private static int[][] jsonWindows(Path file, int vocabSize, int seqLen, int maxWindows) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new HfpruneException("data file " + file + " is not valid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isArray() || root.isEmpty()) {
            throw new HfpruneException("data file " + file + " must be a non-empty JSON array of windows (arrays of token ids)");
        }
        int n = maxWindows > 0 ? Math.min(maxWindows, root.size()) : root.size();
        int[][] windows = new int[n][];
        for (int w = 0; w < n; w++) {
            JsonNode window = root.get(w);
            if (!window.isArray() || window.size() != seqLen) {
                throw new HfpruneException("data file " + file + ": window " + w + " must be an array of exactly "
                        + seqLen + " token ids (--seq-len), found " + (window.isArray() ? window.size() + " elements" : window.getNodeType()));
            }
            windows[w] = new int[seqLen];
            for (int t = 0; t < seqLen; t++) {
                JsonNode id = window.get(t);
                if (!id.canConvertToInt() || !id.isIntegralNumber() || id.asInt() < 0 || id.asInt() >= vocabSize) {
                    throw new HfpruneException("data file " + file + ": window " + w + " position " + t + " holds "
                            + id + ", not a token id in [0, " + vocabSize + ")");
                }
                windows[w][t] = id.asInt();
            }
        }
        return windows;
    }

    /** Consecutive groups of {@code batchWindows} windows; the last group may be smaller. */
    public static List<int[][]> batches(int[][] windows, int batchWindows) {
        if (batchWindows < 1) {
            throw new HfpruneException("--batch-windows must be at least 1, got " + batchWindows);
        }
        List<int[][]> out = new ArrayList<>();
        for (int start = 0; start < windows.length; start += batchWindows) {
            out.add(Arrays.copyOfRange(windows, start, Math.min(windows.length, start + batchWindows)));
        }
        return out;
    }
}
