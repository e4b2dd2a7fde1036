package ai.hfprune.engine.io;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufFile.GgmlType;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Writes a GGUF v3 file (llama.cpp's format, as {@link GgufFile} reads it): header, typed metadata, tensor infos, then
 * each tensor's data aligned to 32 bytes. Tensors are produced one at a time ({@link Tensor#data()}), so only one is in
 * memory. F32 and F16 are stored as they are; Q8_0 is quantized as ggml's reference quantizer does it.
 */
public final class GgufWriter {
    private GgufWriter() {
    }

    /** GGUF's default alignment; llama.cpp assumes it when general.alignment is absent, so it is not written. */
    public static final int ALIGNMENT = 32;
    private static final int MAGIC = 0x46554747; // "GGUF" little-endian
    private static final int VERSION = 3;

    /**
     * One tensor: {@code shape} in PyTorch order (outermost first, as {@link GgufFile} reports it); {@code data} is called
     * once, when the tensor is written, and returns numel(shape) floats, row-major.
     */
    public record Tensor(String name, long[] shape, GgmlType type, Supplier<float[]> data) {
        public Tensor {
            if (type != GgmlType.F32 && type != GgmlType.F16 && type != GgmlType.Q8_0) {
                throw new IllegalArgumentException("hfprune writes F32, F16 and Q8_0 tensors, not " + type);
            }
            if (type == GgmlType.Q8_0 && shape[shape.length - 1] % type.blockSize != 0) {
                throw new IllegalArgumentException(name + " " + Arrays.toString(shape) + ": Q8_0 rows must be a multiple of "
                        + type.blockSize + " long");
            }
        }

        long numel() {
            return SafetensorsWriter.numel(shape);
        }

        long byteSize() {
            return numel() / type.blockSize * type.bytesPerBlock;
        }
    }

    public static void write(Path file, Map<String, GgufValue> metadata, List<Tensor> tensors) {
        Set<String> names = new HashSet<>();
        for (Tensor t : tensors) {
            if (!names.add(t.name())) {
                throw new IllegalArgumentException("tensor " + t.name() + " is listed twice");
            }
        }
        if (metadata.containsKey("general.alignment")) {
            throw new IllegalArgumentException("general.alignment is the writer's: it aligns to " + ALIGNMENT);
        }
        try (FileChannel ch = FileChannel.open(file, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            writeFully(ch, ByteBuffer.wrap(header(metadata, tensors)));
            ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (Tensor t : tensors) {
                float[] data = t.data().get();
                if (data.length != t.numel()) {
                    throw new IllegalStateException(t.name() + ": got " + data.length + " values for shape "
                            + Arrays.toString(t.shape()));
                }
                encode(data, t.type(), ch, buf);
                pad(ch, buf, t.byteSize());
            }
            buf.flip();
            writeFully(ch, buf);
        } catch (IOException e) {
            throw new HfpruneException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** Everything before the tensor data, padded to the alignment; offsets are relative to the data's start. */
    private static byte[] header(Map<String, GgufValue> metadata, List<Tensor> tensors) {
        Le out = new Le();
        out.i32(MAGIC).i32(VERSION).i64(tensors.size()).i64(metadata.size());
        metadata.forEach((key, value) -> {
            out.string(key).i32(value.type());
            out.value(key, value);
        });
        long offset = 0;
        for (Tensor t : tensors) {
            out.string(t.name()).i32(t.shape().length);
            for (int d = t.shape().length - 1; d >= 0; d--) {
                out.i64(t.shape()[d]); // ggml lists the innermost dimension first
            }
            out.i32(t.type().id).i64(offset);
            offset += aligned(t.byteSize());
        }
        while (out.size() % ALIGNMENT != 0) {
            out.write(0);
        }
        return out.toByteArray();
    }

    private static long aligned(long bytes) {
        return (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    private static void encode(float[] data, GgmlType type, FileChannel ch, ByteBuffer buf) throws IOException {
        int unit = type.bytesPerBlock;
        for (int i = 0; i < data.length; i += type.blockSize) {
            if (buf.remaining() < unit) {
                flush(ch, buf);
            }
            switch (type) {
                case F32 -> buf.putFloat(data[i]);
                case F16 -> buf.putShort(HalfFloats.floatToF16(data[i]));
                case Q8_0 -> putQ8_0(data, i, buf);
                default -> throw new IllegalStateException(type.toString());
            }
        }
    }

    /**
     * ggml's quantize_row_q8_0_ref: scale d = max|x| / 127 stored as float16, q = round(x / d) with halves away from
     * zero, computed with the float32 d (not the rounded one), as ggml does.
     */
    static void putQ8_0(float[] x, int start, ByteBuffer buf) {
        float amax = 0;
        for (int j = 0; j < 32; j++) {
            amax = Math.max(amax, Math.abs(x[start + j]));
        }
        float d = amax / 127;
        float id = d != 0 ? 1.0f / d : 0.0f;
        buf.putShort(HalfFloats.floatToF16(d));
        for (int j = 0; j < 32; j++) {
            float v = x[start + j] * id;
            buf.put((byte) (Math.signum(v) * Math.floor(Math.abs(v) + 0.5f))); // C's roundf
        }
    }

    private static void pad(FileChannel ch, ByteBuffer buf, long byteSize) throws IOException {
        for (long i = byteSize; i < aligned(byteSize); i++) {
            if (!buf.hasRemaining()) {
                flush(ch, buf);
            }
            buf.put((byte) 0);
        }
    }

    private static void flush(FileChannel ch, ByteBuffer buf) throws IOException {
        buf.flip();
        writeFully(ch, buf);
        buf.clear();
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }

    /** Little-endian writes of GGUF's header types. */
    private static final class Le extends ByteArrayOutputStream {
        Le i32(int v) {
            ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v);
            write(b.array(), 0, 4);
            return this;
        }

        Le i64(long v) {
            ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v);
            write(b.array(), 0, 8);
            return this;
        }

        Le string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            i64(b.length);
            write(b, 0, b.length);
            return this;
        }

        void value(String key, GgufValue v) {
            if (v.type() != GgufValue.ARRAY) {
                scalar(key, v.type(), v.value());
                return;
            }
            if (v.elementType() == GgufValue.ARRAY) {
                throw new IllegalArgumentException(key + ": arrays of arrays are not written");
            }
            i32(v.elementType()).i64(v.list().size());
            for (Object e : v.list()) {
                scalar(key, v.elementType(), e);
            }
        }

        private void scalar(String key, int type, Object v) {
            try {
                switch (type) {
                    case GgufValue.UINT8, GgufValue.INT8 -> write(((Number) v).intValue());
                    case GgufValue.BOOL -> write((Boolean) v ? 1 : 0);
                    case GgufValue.UINT16, GgufValue.INT16 -> {
                        int s = ((Number) v).intValue();
                        write(s & 0xff);
                        write((s >>> 8) & 0xff);
                    }
                    case GgufValue.UINT32, GgufValue.INT32 -> i32((int) ((Number) v).longValue());
                    case GgufValue.FLOAT32 -> i32(Float.floatToRawIntBits(((Number) v).floatValue()));
                    case GgufValue.UINT64, GgufValue.INT64 -> i64(((Number) v).longValue());
                    case GgufValue.FLOAT64 -> i64(Double.doubleToRawLongBits(((Number) v).doubleValue()));
                    case GgufValue.STRING -> string((String) v);
                    default -> throw new IllegalArgumentException("type " + type);
                }
            } catch (ClassCastException e) {
                throw new IllegalArgumentException(key + ": " + v + " is not a GGUF value of type " + type, e);
            }
        }
    }
}
