package ai.hfprune.engine.io;

import ai.hfprune.engine.HfpruneException;
import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A Hugging Face safetensors checkpoint: a single {@code model.safetensors} or shards listed by
 * {@code model.safetensors.index.json}. Headers are parsed and validated up front; tensor data is
 * read one tensor at a time, in chunks, and converted to float32 on read, so opening a large model is cheap.
 * Tensor names are the checkpoint's own (Hugging Face names).
 */
public final class SafetensorsSource implements TensorSource {

    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    /** Element types hfprune reads and writes; safetensors spells them this way in headers. */
    public enum Dtype {
        F32(ChunkedTensorReader.Encoding.F32), F16(ChunkedTensorReader.Encoding.F16), BF16(ChunkedTensorReader.Encoding.BF16);

        public final int bytes;
        final ChunkedTensorReader.Encoding encoding;

        Dtype(ChunkedTensorReader.Encoding encoding) {
            this.encoding = encoding;
            this.bytes = encoding.bytesPerBlock;
        }

        /** Parses "F32", "F16" or "BF16" (case-insensitive), naming {@code where} on failure. */
        public static Dtype parse(String s, String where) {
            for (Dtype d : values()) {
                if (d.name().equalsIgnoreCase(s)) {
                    return d;
                }
            }
            throw new HfpruneException(where + " has dtype " + s
                    + ", which hfprune does not read (supported: F32, F16, BF16)");
        }
    }

    /** Where one tensor lives: {@code start} is absolute in {@code file}. */
    private record Entry(Path file, Dtype dtype, long[] shape, long start, long byteSize) {
    }

    // The safetensors reference implementation refuses headers above 100 MB; a larger value means a corrupt file.
    private static final long MAX_HEADER_BYTES = 100L << 20;

    // Duplicate keys in a header or index would silently shadow each other; treat them as corruption.
    static final JsonMapper JSON = JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

    private final Path location;
    private final Map<String, Entry> tensors;
    private final Map<Path, FileChannel> channels;
    private final ChunkedTensorReader reader = new ChunkedTensorReader();

    private SafetensorsSource(Path location, Map<String, Entry> tensors, Map<Path, FileChannel> channels) {
        this.location = location;
        this.tensors = tensors;
        this.channels = channels;
    }

    /**
     * Opens the checkpoint in {@code modelDir}: {@code model.safetensors.index.json} (sharded) if present,
     * else {@code model.safetensors}. A path to a single {@code .safetensors} file is accepted too.
     */
    public static SafetensorsSource open(Path modelDir) {
        if (Files.isRegularFile(modelDir)) {
            return openFiles(modelDir, Map.of(modelDir, Set.of()));
        }
        if (!Files.isDirectory(modelDir)) {
            throw new HfpruneException(modelDir + " does not exist");
        }
        Path index = modelDir.resolve(INDEX_FILE);
        if (Files.isRegularFile(index)) {
            return openFiles(modelDir, readIndex(index));
        }
        Path single = modelDir.resolve(SINGLE_FILE);
        if (Files.isRegularFile(single)) {
            return openFiles(modelDir, Map.of(single, Set.of()));
        }
        throw new HfpruneException(modelDir + " holds neither " + SINGLE_FILE + " nor " + INDEX_FILE);
    }

    /** Reads the index's weight_map as shard file → the names the index places in it. */
    private static Map<Path, Set<String>> readIndex(Path index) {
        JsonNode root;
        try {
            root = JSON.readTree(index.toFile());
        } catch (JacksonException e) {
            throw new HfpruneException(index + " is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new HfpruneException("cannot read " + index + ": " + e.getMessage(), e);
        }
        JsonNode weightMap = root == null ? null : root.get("weight_map");
        if (weightMap == null || !weightMap.isObject() || weightMap.isEmpty()) {
            throw new HfpruneException(index + " has no \"weight_map\" object naming the shard of each tensor");
        }
        Map<Path, Set<String>> shards = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new HfpruneException(index + ": weight_map entry " + e.getKey() + " is not a file name");
            }
            String fileName = e.getValue().asText();
            // Shards are siblings of the index; a path elsewhere would be a corrupt or hostile index.
            if (fileName.isEmpty() || fileName.contains("/") || fileName.contains("\\") || fileName.equals("..")) {
                throw new HfpruneException(index + ": weight_map places " + e.getKey() + " in " + fileName
                        + ", which is not a file next to the index");
            }
            Path shard = index.resolveSibling(fileName);
            if (!Files.isRegularFile(shard)) {
                throw new HfpruneException(index + " lists shard " + fileName + " (for " + e.getKey()
                        + "), but " + shard + " is missing");
            }
            shards.computeIfAbsent(shard, k -> new LinkedHashSet<>()).add(e.getKey());
        }
        return shards;
    }

    /**
     * Parses every shard's header. {@code expected} maps each file to the names an index places there
     * (empty when there is no index); each of those must be in that file.
     */
    private static SafetensorsSource openFiles(Path location, Map<Path, Set<String>> expected) {
        Map<String, Entry> tensors = new LinkedHashMap<>();
        for (Map.Entry<Path, Set<String>> shard : expected.entrySet()) {
            Path file = shard.getKey();
            Map<String, Entry> inFile = readHeader(file);
            for (String name : shard.getValue()) {
                if (!inFile.containsKey(name)) {
                    throw new HfpruneException(INDEX_FILE + " places " + name + " in " + file
                            + ", but that file has no such tensor");
                }
            }
            for (Map.Entry<String, Entry> t : inFile.entrySet()) {
                Entry previous = tensors.putIfAbsent(t.getKey(), t.getValue());
                if (previous != null) {
                    throw new HfpruneException("tensor " + t.getKey() + " is in two shards, " + previous.file()
                            + " and " + file + "; the checkpoint is ambiguous");
                }
            }
        }
        Map<Path, FileChannel> channels = new LinkedHashMap<>();
        try {
            for (Path file : expected.keySet()) {
                channels.put(file, FileChannel.open(file, StandardOpenOption.READ));
            }
        } catch (IOException e) {
            channels.values().forEach(SafetensorsSource::closeQuietly);
            throw new HfpruneException("cannot open " + e.getMessage(), e);
        }
        return new SafetensorsSource(location, Collections.unmodifiableMap(tensors), channels);
    }

    /** Reads and validates one file's header: 8-byte little-endian length, then that many bytes of JSON. */
    private static Map<String, Entry> readHeader(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long fileSize = ch.size();
            if (fileSize < 8) {
                throw new HfpruneException(file + " is truncated: " + fileSize
                        + " bytes, too short for the 8-byte safetensors header length");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long headerLen = lenBuf.getLong(0);
            if (headerLen < 2 || headerLen > MAX_HEADER_BYTES) {
                throw new HfpruneException(file + " is not a safetensors file: implausible header length "
                        + Long.toUnsignedString(headerLen));
            }
            if (8 + headerLen > fileSize) {
                throw new HfpruneException(file + " is truncated or corrupt: its header length " + headerLen
                        + " points beyond the end of the file (" + fileSize + " bytes)");
            }
            ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLen);
            readFully(ch, headerBuf, 8);
            JsonNode header;
            try {
                header = JSON.readTree(headerBuf.array());
            } catch (JacksonException e) {
                throw new HfpruneException(file + " is corrupt: its header is not valid JSON ("
                        + e.getOriginalMessage() + ")");
            }
            if (header == null || !header.isObject()) {
                throw new HfpruneException(file + " is corrupt: its header is not a JSON object");
            }
            long dataStart = 8 + headerLen;
            long dataSize = fileSize - dataStart;
            Map<String, Entry> tensors = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (!e.getKey().equals("__metadata__")) {
                    tensors.put(e.getKey(), parseEntry(file, e.getKey(), e.getValue(), dataStart, dataSize));
                }
            }
            checkLayout(file, tensors, dataStart, dataSize);
            return tensors;
        } catch (IOException e) {
            throw new HfpruneException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static Entry parseEntry(Path file, String name, JsonNode node, long dataStart, long dataSize) {
        String where = file + ": tensor " + name;
        if (!node.isObject()) {
            throw new HfpruneException(where + " is not described by a JSON object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new HfpruneException(where + " has no dtype");
        }
        Dtype dtype = Dtype.parse(dtypeNode.asText(), where);
        long[] shape = longArray(node.get("shape"), where, "shape");
        long[] offsets = longArray(node.get("data_offsets"), where, "data_offsets");
        if (offsets.length != 2 || offsets[0] > offsets[1]) {
            throw new HfpruneException(where + " has malformed data_offsets " + Arrays.toString(offsets));
        }
        long expectedBytes;
        try {
            long numel = 1;
            for (long d : shape) {
                numel = Math.multiplyExact(numel, d);
            }
            expectedBytes = Math.multiplyExact(numel, (long) dtype.bytes);
        } catch (ArithmeticException e) {
            throw new HfpruneException(where + " has an impossibly large shape " + Arrays.toString(shape));
        }
        long byteSize = offsets[1] - offsets[0];
        if (byteSize != expectedBytes) {
            throw new HfpruneException(where + " has data_offsets " + Arrays.toString(offsets) + " spanning "
                    + byteSize + " bytes, but shape " + Arrays.toString(shape) + " of " + dtype + " needs "
                    + expectedBytes);
        }
        if (offsets[1] > dataSize) {
            throw new HfpruneException(file + " is truncated or corrupt: tensor " + name + " has data_offsets "
                    + Arrays.toString(offsets) + ", which point past the end of the file (" + dataSize
                    + " data bytes after the header)");
        }
        return new Entry(file, dtype, shape, dataStart + offsets[0], byteSize);
    }

    /**
     * The tensors must tile the data exactly, in some order: no two share a byte, and no byte is outside every tensor.
     * An overlap makes one tensor's weights silently another's, and a gap or trailing bytes are data no tensor owns
     * (the format's reference implementation refuses both, which also keeps a file from being two formats at once).
     */
    private static void checkLayout(Path file, Map<String, Entry> tensors, long dataStart, long dataSize) {
        List<Map.Entry<String, Entry>> byStart = new ArrayList<>(tensors.entrySet());
        byStart.sort(Comparator.<Map.Entry<String, Entry>>comparingLong(e -> e.getValue().start())
                .thenComparingLong(e -> e.getValue().byteSize()));
        long end = 0; // relative to dataStart: where the tensors so far end
        String previous = null;
        for (Map.Entry<String, Entry> e : byStart) {
            long start = e.getValue().start() - dataStart;
            if (start < end) {
                throw new HfpruneException(file + " is corrupt: tensor " + e.getKey() + " (data_offsets "
                        + offsets(e.getValue(), dataStart) + ") overlaps tensor " + previous + " (data_offsets "
                        + offsets(tensors.get(previous), dataStart) + ")");
            }
            if (start > end) {
                throw new HfpruneException(file + " is corrupt: " + (start - end) + " bytes at data offset " + end
                        + " belong to no tensor (a gap " + (previous == null ? "before the first tensor, " : "after " + previous + ", ")
                        + "before " + e.getKey() + ")");
            }
            end = start + e.getValue().byteSize();
            previous = e.getKey();
        }
        if (end != dataSize) {
            throw new HfpruneException(file + " is corrupt: its last " + (dataSize - end) + " bytes (from data offset " + end
                    + ") belong to no tensor");
        }
    }

    private static String offsets(Entry e, long dataStart) {
        return "[" + (e.start() - dataStart) + ", " + (e.start() - dataStart + e.byteSize()) + "]";
    }

    private static long[] longArray(JsonNode node, String where, String field) {
        if (node == null || !node.isArray()) {
            throw new HfpruneException(where + " has no " + field + " array");
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
                throw new HfpruneException(where + " has a " + field + " entry that is not a non-negative integer: " + v);
            }
            out[i] = v.asLong();
        }
        return out;
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, position + buf.position());
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
        }
    }

    @Override
    public Set<String> names() {
        return tensors.keySet();
    }

    @Override
    public long[] shape(String name) {
        return entry(name).shape().clone();
    }

    /** The dtype the tensor is stored in. */
    public Dtype dtype(String name) {
        return entry(name).dtype();
    }

    @Override
    public void readFloats(String name, long first, FloatBuffer dst) {
        Entry t = entry(name);
        try {
            reader.read(channels.get(t.file()), t.start(), t.byteSize() / t.dtype().bytes, t.dtype().encoding, first, dst);
        } catch (IOException e) {
            throw new HfpruneException("cannot read tensor " + name + " of " + t.file() + ": " + e.getMessage(), e);
        }
    }

    private Entry entry(String name) {
        Entry t = tensors.get(name);
        if (t == null) {
            throw new HfpruneException("the checkpoint at " + location + " has no tensor " + name);
        }
        return t;
    }

    @Override
    public String toString() {
        return "safetensors checkpoint " + location;
    }

    @Override
    public void close() {
        channels.values().forEach(SafetensorsSource::closeQuietly);
    }

    private static void closeQuietly(FileChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // closing a read-only channel cannot lose data
        }
    }
}
