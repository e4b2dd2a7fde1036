package ai.hfprune.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * Which malloc this JVM's libtorch allocates with (infra/malloc-tuning.sh): libtorch frees every intermediate tensor
 * when its NDManager closes, and glibc's defaults hand large blocks back to the kernel, so that the next batch pays for
 * zeroing fresh pages. The launcher and the Docker image preload tcmalloc where it is installed, else set glibc's
 * tunables, and say which in {@code HFPRUNE_MALLOC_TUNING_STATE}; as with {@link MklOverride}, what this process really
 * has is checked, so a failed preload is reported as it is.
 */
public final class MallocTuning {

    private MallocTuning() {
    }

    /** True when tcmalloc is mapped into this process (Linux's /proc/self/maps). */
    public static boolean tcmalloc() {
        try (Stream<String> maps = Files.lines(Path.of("/proc/self/maps"))) {
            return maps.anyMatch(line -> line.contains("/libtcmalloc"));
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** One line for --version and the benches, e.g. "malloc: tcmalloc (tcmalloc: /usr/lib/…/libtcmalloc_minimal.so.4)". */
    public static String describe() {
        String state = System.getenv("HFPRUNE_MALLOC_TUNING_STATE");
        String tunables = System.getenv("GLIBC_TUNABLES");
        boolean tcmalloc = tcmalloc();
        String in = tcmalloc ? "tcmalloc" : tunables != null ? "glibc, GLIBC_TUNABLES=" + tunables : "glibc's defaults";
        String why;
        if (state == null || state.isBlank()) {
            why = "not started by ./hfprune or the image";
        } else if (state.startsWith("tcmalloc") && !tcmalloc) {
            why = "the launcher decided \"" + state + "\" but the library is not mapped";
        } else {
            why = state;
        }
        return "malloc: " + in + " (" + why + ")";
    }
}
