package ai.hfprune.engine.model;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The sha256 of a checkpoint's weight files, remembered by what identifies the files on disk: each file's real path,
 * size, modification time and file key (the inode on Linux). A service that needs only a model's identity and not its
 * weights (the aggregator, the sampler) then learns it without reading gigabytes, once any process on the machine has
 * digested the same files; a file rewritten in any way that changes its size, time or inode is digested again. (A
 * file changed in place keeping all three — size, nanosecond time, inode — would be missed; make and ccache make the
 * same trade.)
 *
 * <p>One small file per checkpoint, named by the sha256 of its key and holding the key and the digest, written
 * atomically, so processes share the cache without locks. Where: {@code -Dhfprune.digest.cache=DIR}, else
 * {@code HFPRUNE_DIGEST_CACHE}, else {@code $XDG_CACHE_HOME/hfprune/digests}, else {@code ~/.cache/hfprune/digests};
 * {@code off} turns it off. A cache that cannot be read or written is skipped: the digest is then computed, as
 * without one.
 */
public final class DigestCache {

    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");

    private final Path dir;

    public DigestCache(Path dir) {
        this.dir = dir;
    }

    /** The cache configured for this process, or empty when it is off. */
    public static Optional<DigestCache> configured() {
        String dir = System.getProperty("hfprune.digest.cache");
        if (dir == null || dir.isBlank()) {
            dir = System.getenv("HFPRUNE_DIGEST_CACHE");
        }
        if (dir != null && !dir.isBlank()) {
            return dir.strip().equals("off") ? Optional.empty() : Optional.of(new DigestCache(Path.of(dir.strip())));
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return Optional.of(new DigestCache(base.resolve("hfprune").resolve("digests")));
    }

    /** The remembered digest of exactly these files as they are now, if any. */
    public Optional<String> lookup(List<Path> files) {
        try {
            String key = key(files);
            Path entry = dir.resolve(sha256(key));
            if (!Files.isRegularFile(entry)) {
                return Optional.empty();
            }
            List<String> lines = Files.readAllLines(entry, StandardCharsets.UTF_8);
            if (lines.size() == 2 && lines.get(0).equals(key) && SHA256.matcher(lines.get(1)).matches()) {
                return Optional.of(lines.get(1));
            }
            return Optional.empty(); // another key with the same name (never, in practice) or a damaged entry
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /** Remembers the digest of these files; failures are ignored (the cache is an optimization). */
    public void store(List<Path> files, String digest) {
        try {
            String key = key(files);
            Files.createDirectories(dir);
            Path entry = dir.resolve(sha256(key));
            Path tmp = Files.createTempFile(dir, ".entry-", ".tmp");
            Files.writeString(tmp, key + "\n" + digest + "\n", StandardCharsets.UTF_8);
            Files.move(tmp, entry, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException | RuntimeException e) {
            // a read-only home, a full disk: the next process digests the files itself
        }
    }

    /** The files' identity on disk, one line: real path, size, modification time in ns and file key of each. */
    static String key(List<Path> files) throws IOException {
        StringBuilder key = new StringBuilder("hfprune.digest/1");
        for (Path file : files) {
            Path real = file.toRealPath();
            BasicFileAttributes a = Files.readAttributes(real, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            key.append('\t').append(real).append('|').append(a.size()).append('|')
                    .append(a.lastModifiedTime().to(java.util.concurrent.TimeUnit.NANOSECONDS)).append('|').append(a.fileKey());
        }
        return key.toString().replace('\n', ' ');
    }

    private static String sha256(String text) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
