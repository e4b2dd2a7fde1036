package ai.hfprune.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * Whether this JVM runs with the MKL vendor override (services/engine/src/main/c): a library that makes libtorch's
 * oneMKL pick its code path by CPU features on non-Intel CPUs. The launcher and the Docker image preload it where it
 * helps (infra/mkl-override.sh) and say why in {@code HFPRUNE_MKL_OVERRIDE_STATE}; what counts is whether the library
 * is really mapped into this process, so a failed preload or one made by hand is reported as it is.
 */
public final class MklOverride {

    /** The library's file name, as the engine's build writes it (target/native). */
    public static final String LIBRARY = "libhfprune_mkl_override.so";

    private MklOverride() {
    }

    /** True when the override library is mapped into this process (Linux's /proc/self/maps). */
    public static boolean active() {
        try (Stream<String> maps = Files.lines(Path.of("/proc/self/maps"))) {
            return maps.anyMatch(line -> line.endsWith("/" + LIBRARY));
        } catch (IOException | RuntimeException e) {
            return false; // not Linux: never preloaded
        }
    }

    /** One line for --version and the benches, e.g. "MKL vendor override: active (on: AuthenticAMD CPU with AVX2)". */
    public static String describe() {
        String state = System.getenv("HFPRUNE_MKL_OVERRIDE_STATE");
        boolean active = active();
        String why;
        if (state == null || state.isBlank()) {
            why = active ? "preloaded by hand" : "not started by ./hfprune or the image";
        } else if (active || state.startsWith("off")) {
            why = state;
        } else {
            why = "the launcher decided \"" + state + "\" but the library is not mapped";
        }
        return "MKL vendor override: " + (active ? "active" : "inactive") + " (" + why + ")";
    }
}
