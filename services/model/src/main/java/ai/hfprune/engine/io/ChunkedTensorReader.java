package ai.hfprune.engine.io;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;

/**
 * Reads stored tensors with positional reads through one small buffer and converts them to float32 on the way.
 * Not memory maps: mapped pages count as this process's resident memory until the garbage collector unmaps them, so a
 * model loaded from maps held most of its file beside its float32 copy (1.9x the float32 size for an F32 checkpoint,
 * measured by {@code LoadMemoryTest}); with reads, loading costs the float32 weights plus one chunk.
 * One reader per open checkpoint; reads are serialized.
 */
final class ChunkedTensorReader {

    /** How elements are stored: {@code elementsPerBlock} values in {@code bytesPerBlock} bytes, little-endian. */
    enum Encoding {
        F32(1, 4), F16(1, 2), BF16(1, 2),
        /** ggml's Q8_0: blocks of 32 int8 values after their float16 scale. */
        Q8_0(32, 34);

        final int elementsPerBlock;
        final int bytesPerBlock;

        Encoding(int elementsPerBlock, int bytesPerBlock) {
            this.elementsPerBlock = elementsPerBlock;
            this.bytesPerBlock = bytesPerBlock;
        }
    }

    private static final int CHUNK_BYTES = 4 << 20;

    private ByteBuffer chunk;

    /**
     * Reads elements {@code first} to {@code first + dst.remaining()} of a tensor of {@code numel} elements stored as
     * {@code encoding} from byte {@code position} of {@code channel}, converted to float32, into {@code dst}.
     */
    synchronized void read(FileChannel channel, long position, long numel, Encoding encoding, long first, FloatBuffer dst)
            throws IOException {
        long count = dst.remaining();
        if (first < 0 || first + count > numel) {
            throw new IndexOutOfBoundsException("elements " + first + ".." + (first + count) + " of a tensor of " + numel);
        }
        if (first % encoding.elementsPerBlock != 0 || count % encoding.elementsPerBlock != 0) {
            throw new IllegalArgumentException(encoding + " tensors are read in whole blocks of " + encoding.elementsPerBlock);
        }
        if (chunk == null) {
            chunk = ByteBuffer.allocateDirect(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        }
        long start = position + first / encoding.elementsPerBlock * encoding.bytesPerBlock;
        long byteSize = count / encoding.elementsPerBlock * encoding.bytesPerBlock;
        int step = CHUNK_BYTES - CHUNK_BYTES % encoding.bytesPerBlock; // whole blocks per chunk
        for (long done = 0; done < byteSize; done += step) {
            chunk.clear().limit((int) Math.min(step, byteSize - done));
            while (chunk.hasRemaining()) {
                if (channel.read(chunk, start + done + chunk.position()) < 0) {
                    throw new EOFException("the file ends inside a tensor");
                }
            }
            chunk.flip();
            convert(chunk, encoding, dst);
        }
    }

    private static void convert(ByteBuffer data, Encoding encoding, FloatBuffer dst) {
        switch (encoding) {
            case F32 -> dst.put(data.asFloatBuffer());
            case F16 -> {
                ShortBuffer s = data.asShortBuffer();
                while (s.hasRemaining()) {
                    dst.put(HalfFloats.f16ToFloat(s.get()));
                }
            }
            case BF16 -> {
                ShortBuffer s = data.asShortBuffer();
                while (s.hasRemaining()) {
                    dst.put(HalfFloats.bf16ToFloat(s.get()));
                }
            }
            case Q8_0 -> {
                while (data.hasRemaining()) {
                    float scale = HalfFloats.f16ToFloat(data.getShort());
                    for (int i = 0; i < 32; i++) {
                        dst.put(scale * data.get());
                    }
                }
            }
        }
    }
}
