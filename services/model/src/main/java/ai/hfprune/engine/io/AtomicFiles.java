package ai.hfprune.engine.io;

import ai.hfprune.engine.HfpruneException;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.charset.StandardCharsets;

/**
 * Writes a file through a hidden temporary sibling and a rename, so a failure never leaves a half-written file. The
 * temporary file is created with the default permissions (not Files.createTempFile's owner-only ones), so the result
 * is as readable as any file the process writes.
 */
public final class AtomicFiles {

    @FunctionalInterface
    public interface Writer {
        void write(OutputStream out) throws IOException;
    }

    private AtomicFiles() {
    }

    /**
     * Refuses a target that is a directory, and one that exists unless {@code force}: commands call this before long
     * work, so an earlier result is never replaced by mistake (as prune does with its output directory).
     */
    public static void requireWritable(Path target, boolean force) {
        if (Files.isDirectory(target)) {
            throw new HfpruneException("output " + target + " is a directory, not a file");
        }
        if (!force && Files.exists(target)) {
            throw new HfpruneException("output " + target + " exists (use --force to replace it)");
        }
    }

    /** {@link #write} of a text in UTF-8. */
    public static void writeString(Path target, String text) {
        write(target, out -> out.write(text.getBytes(StandardCharsets.UTF_8)));
    }

    public static void write(Path target, Writer writer) {
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = dir.resolve("." + absolute.getFileName() + ".tmp-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
            try (OutputStream out = Files.newOutputStream(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                writer.write(out);
            }
            try {
                Files.move(tmp, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, absolute, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new HfpruneException("cannot write " + target + ": " + e.getMessage(), e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // best effort: the temporary file is hidden and named after its target
                }
            }
        }
    }
}
