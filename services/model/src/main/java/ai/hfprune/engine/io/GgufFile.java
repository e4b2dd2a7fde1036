package ai.hfprune.engine.io;

import ai.hfprune.engine.HfpruneException;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF v2/v3 file (llama.cpp's format): metadata key/values and tensors, read in place.
 * Tensor data is read one tensor at a time, in chunks, and converted to float32 on read.
 * Tensor names and shapes here are GGUF's own ({@code blk.0.ffn_down.weight}, shape in PyTorch order);
 * {@link GgufTensorSource} maps them to Hugging Face names.
 */
public final class GgufFile implements AutoCloseable {

    /** GGML tensor types this reader converts. */
    public enum GgmlType {
        F32(0, ChunkedTensorReader.Encoding.F32), F16(1, ChunkedTensorReader.Encoding.F16),
        Q8_0(8, ChunkedTensorReader.Encoding.Q8_0), BF16(30, ChunkedTensorReader.Encoding.BF16);

        final int id;
        final ChunkedTensorReader.Encoding encoding;
        final int blockSize;
        final int bytesPerBlock;

        GgmlType(int id, ChunkedTensorReader.Encoding encoding) {
            this.id = id;
            this.encoding = encoding;
            this.blockSize = encoding.elementsPerBlock;
            this.bytesPerBlock = encoding.bytesPerBlock;
        }

        static GgmlType of(int id, String tensor) {
            for (GgmlType t : values()) {
                if (t.id == id) {
                    return t;
                }
            }
            throw new HfpruneException("GGUF tensor " + tensor + " has ggml type " + id
                    + ", which hfprune does not read (supported: F32, F16, BF16, Q8_0)");
        }
    }

    public record TensorInfo(String name, long[] shape, GgmlType type, long offset, long byteSize) {
        public long numel() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    private static final int MAGIC = 0x46554747; // "GGUF" little-endian

    private final Path path;
    private final FileChannel channel;
    private final ChunkedTensorReader reader = new ChunkedTensorReader();
    private final Map<String, Object> metadata;
    private final Map<String, GgufValue> typedMetadata;
    private final Map<String, TensorInfo> tensors;

    private GgufFile(Path path, FileChannel channel, Map<String, Object> metadata, Map<String, GgufValue> typedMetadata,
                     Map<String, TensorInfo> tensors) {
        this.path = path;
        this.channel = channel;
        this.metadata = metadata;
        this.typedMetadata = typedMetadata;
        this.tensors = tensors;
    }

    public static GgufFile open(Path path) {
        long fileSize;
        Map<String, Object> metadata = new LinkedHashMap<>();
        Map<String, GgufValue> typed = new LinkedHashMap<>();
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        try {
            fileSize = Files.size(path);
            try (InputStream raw = new BufferedInputStream(Files.newInputStream(path), 1 << 16)) {
                LeReader in = new LeReader(raw);
                if (in.i32() != MAGIC) {
                    throw new HfpruneException(path + " is not a GGUF file (bad magic)");
                }
                int version = in.i32();
                if (version != 2 && version != 3) {
                    throw new HfpruneException(path + ": GGUF version " + version + " is not supported (2 or 3)");
                }
                long tensorCount = in.i64();
                long kvCount = in.i64();
                if (tensorCount < 0 || tensorCount > 1_000_000 || kvCount < 0 || kvCount > 1_000_000) {
                    throw new HfpruneException(path + ": implausible GGUF header (corrupt file?)");
                }
                for (long i = 0; i < kvCount; i++) {
                    String key = in.string();
                    GgufValue value = in.typedValue(in.i32());
                    typed.put(key, value);
                    metadata.put(key, value.value());
                }
                List<TensorInfo> infos = new ArrayList<>();
                for (long i = 0; i < tensorCount; i++) {
                    String name = in.string();
                    int nDims = in.i32();
                    if (nDims < 1 || nDims > 4) {
                        throw new HfpruneException(path + ": tensor " + name + " has " + nDims + " dimensions");
                    }
                    long[] ggmlDims = new long[nDims];
                    for (int d = 0; d < nDims; d++) {
                        ggmlDims[d] = in.i64();
                    }
                    GgmlType type = GgmlType.of(in.i32(), name);
                    long offset = in.i64();
                    long[] shape = new long[nDims]; // ggml lists the innermost dimension first
                    for (int d = 0; d < nDims; d++) {
                        shape[d] = ggmlDims[nDims - 1 - d];
                    }
                    long numel = 1;
                    for (long d : shape) {
                        numel *= d;
                    }
                    if (numel % type.blockSize != 0) {
                        throw new HfpruneException(path + ": tensor " + name + " is not a whole number of " + type + " blocks");
                    }
                    infos.add(new TensorInfo(name, shape, type, offset, numel / type.blockSize * type.bytesPerBlock));
                }
                long alignment = ((Number) metadata.getOrDefault("general.alignment", 32)).longValue();
                long dataStart = align(in.position(), alignment);
                for (TensorInfo t : infos) {
                    long start = dataStart + t.offset;
                    if (start + t.byteSize > fileSize) {
                        throw new HfpruneException(path + " is truncated: tensor " + t.name + " ends at byte "
                                + (start + t.byteSize) + " but the file has " + fileSize + " bytes");
                    }
                    tensors.put(t.name, new TensorInfo(t.name, t.shape, t.type, start, t.byteSize));
                }
            }
            return new GgufFile(path, FileChannel.open(path, StandardOpenOption.READ), Collections.unmodifiableMap(metadata),
                    Collections.unmodifiableMap(typed), Collections.unmodifiableMap(tensors));
        } catch (EOFException e) {
            throw new HfpruneException(path + " is truncated: the GGUF header ends early");
        } catch (IOException e) {
            throw new HfpruneException("cannot read " + path + ": " + e.getMessage(), e);
        }
    }

    private static long align(long pos, long alignment) {
        return (pos + alignment - 1) / alignment * alignment;
    }

    public Path path() {
        return path;
    }

    public Map<String, Object> metadata() {
        return metadata;
    }

    /** The metadata with each value's declared GGUF type, in file order (what a writer needs to copy keys exactly). */
    public Map<String, GgufValue> typedMetadata() {
        return typedMetadata;
    }

    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public String string(String key) {
        Object v = metadata.get(key);
        return v == null ? null : v.toString();
    }

    public Number number(String key) {
        Object v = metadata.get(key);
        if (v != null && !(v instanceof Number)) {
            throw new HfpruneException(path + ": metadata " + key + " is not a number");
        }
        return (Number) v;
    }

    public int requireInt(String key) {
        Number n = number(key);
        if (n == null) {
            throw new HfpruneException(path + ": GGUF metadata lacks " + key);
        }
        return n.intValue();
    }

    @SuppressWarnings("unchecked")
    public List<Object> array(String key) {
        Object v = metadata.get(key);
        return v instanceof List ? (List<Object>) v : null;
    }

    /** Reads {@code dst.remaining()} elements of a tensor from element {@code first} on, as float32, row-major in PyTorch order. */
    public void readFloats(String name, long first, FloatBuffer dst) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new HfpruneException(path + " has no tensor " + name);
        }
        try {
            reader.read(channel, t.offset, t.numel(), t.type.encoding, first, dst);
        } catch (IOException e) {
            throw new HfpruneException("cannot read tensor " + name + " of " + path + ": " + e.getMessage(), e);
        }
    }

    /** Reads a whole tensor as float32 into {@code dst}. */
    public void readFloats(String name, FloatBuffer dst) {
        readFloats(name, 0, dst);
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing a read-only channel cannot lose data
        }
    }

    /** Little-endian reads of GGUF's header types, tracking the byte position. */
    private static final class LeReader {
        private final DataInputStream in;
        private long position;

        LeReader(InputStream in) {
            this.in = new DataInputStream(in);
        }

        long position() {
            return position;
        }

        int u8() throws IOException {
            position += 1;
            return in.readUnsignedByte();
        }

        short i16() throws IOException {
            position += 2;
            return Short.reverseBytes(in.readShort());
        }

        int i32() throws IOException {
            position += 4;
            return Integer.reverseBytes(in.readInt());
        }

        long i64() throws IOException {
            position += 8;
            return Long.reverseBytes(in.readLong());
        }

        String string() throws IOException {
            long len = i64();
            if (len < 0 || len > (1 << 24)) {
                throw new HfpruneException("implausible GGUF string length " + len + " (corrupt file?)");
            }
            byte[] b = new byte[(int) len];
            in.readFully(b);
            position += len;
            return new String(b, StandardCharsets.UTF_8);
        }

        GgufValue typedValue(int type) throws IOException {
            if (type != 9) {
                return new GgufValue(type, -1, value(type));
            }
            int elemType = i32();
            return new GgufValue(type, elemType, array(elemType));
        }

        Object value(int type) throws IOException {
            return switch (type) {
                case 0 -> u8();
                case 1 -> (int) (byte) u8();
                case 2 -> i16() & 0xffff;
                case 3 -> (int) i16();
                case 4 -> i32() & 0xffffffffL;
                case 5 -> i32();
                case 6 -> Float.intBitsToFloat(i32());
                case 7 -> u8() != 0;
                case 8 -> string();
                case 9 -> array(i32());
                case 10 -> i64();
                case 11 -> i64();
                case 12 -> Double.longBitsToDouble(i64());
                default -> throw new HfpruneException("unknown GGUF metadata type " + type + " (corrupt file?)");
            };
        }

        private List<Object> array(int elemType) throws IOException {
            long n = i64();
            if (n < 0 || n > (1 << 26)) {
                throw new HfpruneException("implausible GGUF array length " + n + " (corrupt file?)");
            }
            List<Object> list = new ArrayList<>((int) n);
            for (long i = 0; i < n; i++) {
                list.add(value(elemType));
            }
            return list;
        }
    }
}
