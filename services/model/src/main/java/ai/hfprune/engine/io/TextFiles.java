package ai.hfprune.engine.io;

import ai.hfprune.engine.HfpruneException;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads text files as strict UTF-8. {@code Files.readString} refuses bad bytes too, but only says "Input length = 1";
 * here the refusal names the file and the byte offset, so the bad spot can be found with a hex viewer.
 */
public final class TextFiles {

    private TextFiles() {
    }

    /** Receives the lines of {@link #forEachLine}; returns false to stop. */
    @FunctionalInterface
    public interface LineSink {
        boolean accept(String line, long lineNumber);
    }

    /** The whole file as text; {@code what} describes it in messages (e.g. "data file"). */
    public static String readUtf8(Path file, String what) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new HfpruneException("cannot read " + what + " " + file + ": " + e.getMessage(), e);
        }
        return decode(bytes, 0, what + " " + file);
    }

    /**
     * Hands the file's lines (without their '\n') to {@code sink}, one at a time, so that a large file is never held
     * whole; a bad byte is refused with its offset in the file.
     */
    public static void forEachLine(Path file, String what, LineSink sink) {
        String where = what + " " + file;
        try (InputStream in = Files.newInputStream(file)) {
            byte[] chunk = new byte[1 << 16];
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            long read = 0; // bytes before this chunk
            long lineStart = 0;
            long lineNumber = 0;
            for (int n; (n = in.read(chunk)) > 0; read += n) {
                int from = 0;
                for (int i = 0; i < n; i++) {
                    if (chunk[i] == '\n') {
                        line.write(chunk, from, i - from);
                        if (!sink.accept(decode(line.toByteArray(), lineStart, where), ++lineNumber)) {
                            return;
                        }
                        line.reset();
                        from = i + 1;
                        lineStart = read + i + 1;
                    }
                }
                line.write(chunk, from, n - from);
            }
            if (line.size() > 0) {
                sink.accept(decode(line.toByteArray(), lineStart, where), ++lineNumber);
            }
        } catch (IOException e) {
            throw new HfpruneException("cannot read " + where + ": " + e.getMessage(), e);
        }
    }

    /** Decodes {@code bytes}, refusing malformed UTF-8 with the offset of the first bad byte; {@code where} names them. */
    public static String decode(byte[] bytes, String where) {
        return decode(bytes, 0, where);
    }

    /** As {@link #decode(byte[], String)} for bytes that start at {@code base} in the file. */
    private static String decode(byte[] bytes, long base, String where) {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length); // UTF-8 never gives more chars than bytes
        CoderResult result = decoder.decode(in, out, true);
        if (!result.isError()) {
            result = decoder.flush(out);
        }
        if (result.isError()) {
            int offset = in.position(); // the decoder stops in front of the bad sequence
            throw new HfpruneException(String.format("%s is not valid UTF-8: the byte at offset %d (0x%02X) is not part of a"
                    + " valid character", where, base + offset, bytes[offset] & 0xFF));
        }
        return out.flip().toString();
    }
}
