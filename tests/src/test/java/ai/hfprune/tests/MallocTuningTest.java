package ai.hfprune.tests;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * infra/malloc-tuning.sh, as ./hfprune and the image run it: a JVM started through it reports (hfprune --version) the
 * malloc it really has, tcmalloc mapped into the process where one is installed, else glibc's tunables, and each
 * setting that turns it off or around does so. .ci/run installs tcmalloc, so CI sees both paths.
 */
class MallocTuningTest {

    private static final Path ROOT = RepositoryRoot.find();

    @Test
    void prefersAnInstalledTcmalloc() throws Exception {
        String line = mallocLine(Map.of());
        if (installedTcmalloc()) {
            assertTrue(line.startsWith("malloc: tcmalloc (tcmalloc: /"), line); // mapped: MallocTuning reads /proc/self/maps
        } else {
            assertTrue(line.startsWith("malloc: glibc, GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432")
                    && line.contains("(glibc: no tcmalloc, tunables set by the launcher)"), line);
        }
    }

    @Test
    void fallsBackToGlibcTunables() throws Exception {
        String line = mallocLine(Map.of("HFPRUNE_TCMALLOC", "/nonexistent/libtcmalloc_minimal.so.4"));
        assertTrue(line.startsWith("malloc: glibc, GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.arena_max=1"), line);
        assertTrue(line.contains("no tcmalloc at /nonexistent/libtcmalloc_minimal.so.4"), line);
        assertTrue(mallocLine(Map.of("HFPRUNE_MALLOC_TUNING", "glibc")).contains("(glibc: HFPRUNE_MALLOC_TUNING=glibc"));
    }

    @Test
    void turnsOffAndLeavesTheUsersTunablesAlone() throws Exception {
        assertEquals("malloc: glibc's defaults (off: HFPRUNE_MALLOC_TUNING=0)", mallocLine(Map.of("HFPRUNE_MALLOC_TUNING", "0")));
        String own = mallocLine(Map.of("HFPRUNE_MALLOC_TUNING", "glibc", "GLIBC_TUNABLES", "glibc.malloc.arena_max=2"));
        assertEquals("malloc: glibc, GLIBC_TUNABLES=glibc.malloc.arena_max=2 (off: no tcmalloc, and GLIBC_TUNABLES is set "
                + "already (glibc.malloc.arena_max=2), left as it is)", own);
        assertTrue(mallocLine(Map.of("HFPRUNE_MALLOC_TUNING", "fast")).contains("(off: HFPRUNE_MALLOC_TUNING=fast is not"));
    }

    private static boolean installedTcmalloc() {
        return Stream.of("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")
                .anyMatch(dir -> Files.isRegularFile(Path.of(dir, "libtcmalloc_minimal.so.4")));
    }

    /** The malloc line of {@code hfprune --version} in a JVM started through the script with {@code env} added. */
    private static String mallocLine(Map<String, String> env) throws IOException, InterruptedException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        ProcessBuilder pb = new ProcessBuilder(List.of("sh", ROOT.resolve("infra/malloc-tuning.sh").toString(),
                java.toString(), "-Xmx256m", "-cp", System.getProperty("java.class.path"), "ai.hfprune.cli.Main", "--version"))
                .redirectErrorStream(true);
        pb.environment().keySet().removeAll(List.of("HFPRUNE_MALLOC_TUNING", "HFPRUNE_TCMALLOC", "GLIBC_TUNABLES",
                "HFPRUNE_MALLOC_TUNING_STATE", "LD_PRELOAD"));
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        return out.lines().filter(l -> l.startsWith("malloc: ")).findFirst()
                .orElseThrow(() -> new AssertionError("no malloc line in: " + out));
    }
}
