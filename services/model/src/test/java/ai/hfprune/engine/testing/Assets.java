package ai.hfprune.engine.testing;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/** The shared assets folder for tests: {@code hfprune.assets}, {@code $HFPRUNE_ASSETS}, or ../shared/assets above the working directory. */
public final class Assets {
    private Assets() {
    }

    public static Path require(String relative) {
        for (String base : new String[] {System.getProperty("hfprune.assets"), System.getenv("HFPRUNE_ASSETS")}) {
            if (base != null && Files.exists(Path.of(base, relative))) {
                return Path.of(base, relative);
            }
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path p = dir.resolve("../shared/assets").resolve(relative).normalize();
            if (Files.exists(p)) {
                return p;
            }
        }
        String message = "asset " + relative + " not found (set HFPRUNE_ASSETS)";
        if ("true".equals(System.getenv("CI"))) {
            org.junit.jupiter.api.Assertions.fail(message + ": CI must have the assets"); // never skip silently in CI
        }
        Assumptions.abort(message);
        return null;
    }

    public static Path stories260K() {
        return require("models/stories260K/stories260K.gguf");
    }

    public static Path babyllama() {
        return require("models/babyllama-tok105/babyllama-tok105.gguf");
    }
}
