package ai.hfprune.engine.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** What this process has read, for tests that show a path reads no weight byte (Linux's {@code /proc/self/io}). */
public final class ProcessIo {
    private ProcessIo() {
    }

    public static boolean available() {
        return Files.isReadable(Path.of("/proc/self/io"));
    }

    /** Bytes this process has read through read(2) and friends ({@code rchar}). */
    public static long bytesRead() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/io"), StandardCharsets.US_ASCII)) {
            if (line.startsWith("rchar:")) {
                return Long.parseLong(line.substring(6).strip());
            }
        }
        throw new IllegalStateException("no rchar in /proc/self/io");
    }
}
