package ai.hfprune.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;

/**
 * This process's resident memory as Linux reports it in {@code /proc/self/status}: what the memory rule for loading
 * a model ("at most about 1.5x its float32 size") is measured with, in {@code hfprune bench load} and in a test.
 * Resident memory counts everything: the Java heap, direct buffers, PyTorch's tensors and file pages that are mapped.
 */
public final class ProcessMemory {
    private static final Path STATUS = Path.of("/proc/self/status");
    private static final Path CLEAR_REFS = Path.of("/proc/self/clear_refs");

    private ProcessMemory() {
    }

    /** VmRSS: resident now; empty where /proc is not available. */
    public static OptionalLong residentBytes() {
        return statusKib("VmRSS:");
    }

    /** VmHWM: the peak resident size since the process started or since {@link #resetPeak()}. */
    public static OptionalLong peakResidentBytes() {
        return statusKib("VmHWM:");
    }

    /** Resets VmHWM to the current resident size (Linux 4.0+); false where the kernel does not allow it. */
    public static boolean resetPeak() {
        try {
            Files.writeString(CLEAR_REFS, "5");
            return true;
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            return false;
        }
    }

    private static OptionalLong statusKib(String field) {
        return procFieldBytes(STATUS, field);
    }

    /** A "Field:   123 kB" line of a Linux /proc file such as /proc/self/status or /proc/meminfo, in bytes. */
    public static OptionalLong procFieldBytes(Path file, String field) {
        try {
            for (String line : Files.readAllLines(file)) {
                if (line.startsWith(field)) {
                    return OptionalLong.of(Long.parseLong(line.substring(field.length()).replace("kB", "").trim()) * 1024);
                }
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux
        }
        return OptionalLong.empty();
    }
}
