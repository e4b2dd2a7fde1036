package ai.hfprune.tests;

import java.nio.file.Files;
import java.nio.file.Path;

/** The repository's root: the nearest directory above the working directory with .ci/run and README.md. */
final class RepositoryRoot {
    private RepositoryRoot() {
    }

    static Path find() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.exists(dir.resolve(".ci/run")) && Files.exists(dir.resolve("README.md"))) {
                return dir;
            }
        }
        throw new IllegalStateException("repository root not found");
    }
}
