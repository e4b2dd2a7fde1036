package ai.hfprune.engine.io;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.SafetensorsSource.Dtype;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * Writes tensors as a Hugging Face safetensors checkpoint: one {@code model.safetensors}, or shards
 * {@code model-00001-of-0000N.safetensors} plus {@code model.safetensors.index.json}, as {@code save_pretrained} does.
 * Tensor data is fetched one tensor at a time (see {@link Tensor#data()}), so a model larger than memory can be written
 * as long as each tensor can be produced on its own.
 */
public final class SafetensorsWriter {
    private SafetensorsWriter() {
    }

    /**
     * One tensor to write. {@code data} is called once, when the tensor's bytes are written, and must return
     * {@code numel(shape)} floats, row-major; the writer keeps no reference to them afterwards.
     */
    public record Tensor(String name, long[] shape, Supplier<float[]> data) {
        public Tensor {
            if (SafetensorsWriter.numel(shape) > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(name + " " + Arrays.toString(shape) + " is too large for one float[]");
            }
        }

        /** A tensor whose data is already in memory. */
        public static Tensor of(String name, long[] shape, float[] data) {
            if (data.length != SafetensorsWriter.numel(shape)) {
                throw new IllegalArgumentException(name + ": " + data.length + " values for shape " + Arrays.toString(shape));
            }
            return new Tensor(name, shape, () -> data);
        }

        /** A tensor copied unchanged from {@code source} when it is written. */
        public static Tensor copyOf(TensorSource source, String name) {
            return new Tensor(name, source.shape(name), () -> source.readFloats(name));
        }

        public long numel() {
            return SafetensorsWriter.numel(shape);
        }
    }

    /** A checkpoint with no size limit per file: always a single {@code model.safetensors}. */
    public static final long NO_SHARDING = Long.MAX_VALUE;

    // Files of an earlier checkpoint that would otherwise shadow or mix with the new one.
    private static final Pattern CHECKPOINT_FILE =
            Pattern.compile("model\\.safetensors|model\\.safetensors\\.index\\.json|model-\\d{5}-of-\\d{5}\\.safetensors");

    /** Writes {@code tensors}, in order, as a single {@code model.safetensors} in {@code modelDir}. */
    public static void write(Path modelDir, List<Tensor> tensors, Dtype dtype) {
        write(modelDir, tensors, dtype, NO_SHARDING);
    }

    /**
     * Writes {@code tensors}, in order, into {@code modelDir}, starting a new shard whenever the next tensor would push the
     * current one past {@code maxShardBytes} of tensor data (a tensor larger than that gets a shard of its own), as
     * transformers does. A checkpoint that fits in one shard is written as {@code model.safetensors}.
     * Files are written under temporary names and renamed at the end, replacing any earlier checkpoint in the directory,
     * so a failure leaves the previous checkpoint intact.
     */
    public static void write(Path modelDir, List<Tensor> tensors, Dtype dtype, long maxShardBytes) {
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException("maxShardBytes must be positive, got " + maxShardBytes);
        }
        Set<String> seen = new HashSet<>();
        for (Tensor t : tensors) {
            if (!seen.add(t.name())) {
                throw new IllegalArgumentException("tensor " + t.name() + " is listed twice");
            }
        }
        List<List<Tensor>> shards = planShards(tensors, dtype, maxShardBytes);
        Map<String, List<Tensor>> files = new LinkedHashMap<>();
        if (shards.size() == 1) {
            files.put(SafetensorsSource.SINGLE_FILE, shards.get(0));
        } else {
            for (int i = 0; i < shards.size(); i++) {
                files.put(String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size()), shards.get(i));
            }
        }

        List<Path[]> renames = new ArrayList<>(); // temporary → final
        try {
            Files.createDirectories(modelDir);
            for (Map.Entry<String, List<Tensor>> f : files.entrySet()) {
                Path tmp = modelDir.resolve("." + f.getKey() + ".partial");
                renames.add(new Path[] {tmp, modelDir.resolve(f.getKey())});
                writeFile(tmp, f.getValue(), dtype);
            }
            if (files.size() > 1) {
                Path tmp = modelDir.resolve("." + SafetensorsSource.INDEX_FILE + ".partial");
                renames.add(new Path[] {tmp, modelDir.resolve(SafetensorsSource.INDEX_FILE)});
                Files.writeString(tmp, indexJson(files, dtype), StandardCharsets.UTF_8);
            }
            // The index goes in last, after its shards; then files of an earlier checkpoint are removed.
            Set<Path> written = new HashSet<>();
            for (Path[] r : renames) {
                Files.move(r[0], r[1], StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                written.add(r[1]);
            }
            deleteOldCheckpoint(modelDir, written);
        } catch (IOException e) {
            deleteQuietly(renames);
            throw new HfpruneException("cannot write the checkpoint in " + modelDir + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            deleteQuietly(renames);
            throw e;
        }
    }

    /**
     * Writes one self-contained safetensors file: 8-byte little-endian header length, the JSON header padded with
     * spaces to a multiple of 8 bytes (so the data is aligned), then each tensor's data in order.
     */
    public static void writeFile(Path file, List<Tensor> tensors, Dtype dtype) {
        ObjectNode header = SafetensorsSource.JSON.createObjectNode();
        header.putObject("__metadata__").put("format", "pt"); // what torch's save_pretrained records
        long offset = 0;
        for (Tensor t : tensors) {
            ObjectNode entry = header.putObject(t.name());
            entry.put("dtype", dtype.name());
            ArrayNode shape = entry.putArray("shape");
            Arrays.stream(t.shape()).forEach(shape::add);
            long end = offset + t.numel() * dtype.bytes;
            entry.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();

        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            writeFully(ch, head);
            ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (Tensor t : tensors) {
                float[] data = t.data().get();
                if (data.length != t.numel()) {
                    throw new IllegalStateException(t.name() + ": got " + data.length + " values for shape "
                            + Arrays.toString(t.shape()));
                }
                for (float v : data) {
                    if (buf.remaining() < 4) {
                        buf.flip();
                        writeFully(ch, buf);
                        buf.clear();
                    }
                    switch (dtype) {
                        case F32 -> buf.putFloat(v);
                        case F16 -> buf.putShort(HalfFloats.floatToF16(v));
                        case BF16 -> buf.putShort(HalfFloats.floatToBf16(v));
                    }
                }
            }
            buf.flip();
            writeFully(ch, buf);
        } catch (IOException e) {
            throw new HfpruneException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** Greedy in-order packing, the same rule as transformers' shard splitting. */
    private static List<List<Tensor>> planShards(List<Tensor> tensors, Dtype dtype, long maxShardBytes) {
        List<List<Tensor>> shards = new ArrayList<>();
        List<Tensor> current = new ArrayList<>();
        long currentBytes = 0;
        for (Tensor t : tensors) {
            long bytes = t.numel() * dtype.bytes;
            if (!current.isEmpty() && currentBytes + bytes > maxShardBytes) {
                shards.add(current);
                current = new ArrayList<>();
                currentBytes = 0;
            }
            current.add(t);
            currentBytes += bytes;
        }
        shards.add(current);
        return shards;
    }

    /** The index as transformers writes it: metadata.total_size (bytes of tensor data) and a sorted weight_map. */
    private static String indexJson(Map<String, List<Tensor>> files, Dtype dtype) throws IOException {
        long totalSize = 0;
        Map<String, String> weightMap = new TreeMap<>();
        for (Map.Entry<String, List<Tensor>> f : files.entrySet()) {
            for (Tensor t : f.getValue()) {
                totalSize += t.numel() * dtype.bytes;
                weightMap.put(t.name(), f.getKey());
            }
        }
        ObjectNode root = SafetensorsSource.JSON.createObjectNode();
        root.putObject("metadata").put("total_size", totalSize);
        ObjectNode map = root.putObject("weight_map");
        weightMap.forEach(map::put);
        return SafetensorsSource.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n";
    }

    private static void deleteOldCheckpoint(Path modelDir, Set<Path> keep) throws IOException {
        try (DirectoryStream<Path> files = Files.newDirectoryStream(modelDir)) {
            for (Path p : files) {
                if (!keep.contains(p) && CHECKPOINT_FILE.matcher(p.getFileName().toString()).matches()) {
                    Files.delete(p);
                }
            }
        }
    }

    private static void deleteQuietly(List<Path[]> renames) {
        for (Path[] r : renames) {
            try {
                Files.deleteIfExists(r[0]);
            } catch (IOException ignored) {
                // best effort: a leftover .partial file is harmless
            }
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }

    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }
}
