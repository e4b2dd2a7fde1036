package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.FileTrees;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.util.stream.Stream;

/**
 * Creates a directory that appears complete or not at all: its contents are written into a hidden temporary sibling
 * ({@code .NAME.tmp-…}) that is renamed into place at the end. A failure deletes the temporary directory, leaving
 * the target as it was. (A killed process can leave a {@code .NAME.tmp-…} behind; it is never mistaken for output.)
 */
public final class AtomicDirectory {
    private AtomicDirectory() {
    }

    private static final SecureRandom RANDOM = new SecureRandom();

    @FunctionalInterface
    public interface Contents {
        void writeInto(Path dir) throws IOException;
    }

    /**
     * Refuses a target that is a file, or a non-empty directory unless {@code force}. Call it before long work, so a
     * bad output path is reported first; {@link #write} checks again.
     */
    public static void requireWritable(Path target, boolean force) {
        if (Files.exists(target) && !Files.isDirectory(target)) {
            throw new HfpruneException("output " + target + " exists and is not a directory");
        }
        if (!force && Files.isDirectory(target) && !isEmpty(target)) {
            throw new HfpruneException("output directory " + target + " exists and is not empty (use --force to replace it)");
        }
    }

    /** Writes {@code contents} and renames them to {@code target}, replacing an existing directory if allowed. */
    public static void write(Path target, boolean force, Contents contents) {
        requireWritable(target, force);
        Path abs = target.toAbsolutePath().normalize();
        Path parent = abs.getParent();
        String name = abs.getFileName().toString();
        Path tmp = null;
        try {
            Files.createDirectories(parent);
            tmp = createUnique(parent, "." + name + ".tmp-");
            contents.writeInto(tmp);
            moveIntoPlace(tmp, abs, parent, name);
        } catch (IOException e) {
            deleteQuietly(tmp);
            throw new HfpruneException("cannot write " + target + ": " + e.getMessage(), e);
        } catch (RuntimeException | Error e) {
            deleteQuietly(tmp);
            throw e;
        }
    }

    /** An existing target is moved aside first and deleted only after the new directory is in place. */
    private static void moveIntoPlace(Path tmp, Path target, Path parent, String name) throws IOException {
        if (!Files.exists(target)) {
            move(tmp, target);
            return;
        }
        Path old = createUnique(parent, "." + name + ".old-");
        Files.delete(old); // only its unique name is needed
        move(target, old);
        try {
            move(tmp, target);
        } catch (IOException e) {
            move(old, target); // put the previous contents back
            throw e;
        }
        deleteQuietly(old);
    }

    /**
     * A new directory with a unique name. Unlike Files.createTempDirectory, which makes it private (0700), it gets
     * the default permissions, so the output is as readable as any directory the user creates.
     */
    private static Path createUnique(Path parent, String prefix) throws IOException {
        for (int attempt = 0; ; attempt++) {
            Path dir = parent.resolve(prefix + Long.toUnsignedString(RANDOM.nextLong(), 36));
            try {
                return Files.createDirectory(dir);
            } catch (FileAlreadyExistsException e) {
                if (attempt == 100) {
                    throw e;
                }
            }
        }
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to);
        }
    }

    private static boolean isEmpty(Path dir) {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        } catch (IOException e) {
            throw new HfpruneException("cannot list " + dir + ": " + e.getMessage(), e);
        }
    }

    static void deleteQuietly(Path dir) {
        FileTrees.deleteQuietly(dir); // best effort: what remains is hidden and named after the target
    }
}
