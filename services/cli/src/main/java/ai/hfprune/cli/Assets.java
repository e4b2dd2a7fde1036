package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the default model and data live: {@code $HFPRUNE_ASSETS}, else the {@code hfprune.assets} system
 * property, else {@code ../shared/assets} beside the project root (the launcher passes the root as
 * {@code hfprune.root}), else beside the working directory. Files are read in place, never copied.
 */
public final class Assets {

    public static final String DEFAULT_MODEL = "models/stories260K/stories260K.gguf";
    public static final String DEFAULT_CALIBRATION = "data/tinystories/train-head-2MiB.txt";
    public static final String DEFAULT_EVALUATION = "data/tinystories/valid-hf-head.txt";

    private Assets() {
    }

    public static Path resolve(String relative) {
        for (Path dir : candidates()) {
            Path p = dir.resolve(relative);
            if (Files.exists(p)) {
                return p.normalize();
            }
        }
        throw new HfpruneException("default asset " + relative + " not found; put the assets folder at "
                + Path.of(System.getProperty("hfprune.root", ".")).toAbsolutePath().normalize().resolve("../shared/assets").normalize()
                + " or set HFPRUNE_ASSETS to it, or name the file explicitly (--model / --data)");
    }

    private static Path[] candidates() {
        String env = System.getenv("HFPRUNE_ASSETS");
        String prop = System.getProperty("hfprune.assets");
        String root = System.getProperty("hfprune.root", ".");
        return java.util.stream.Stream.of(env, prop, root + "/../shared/assets", "../shared/assets")
                .filter(s -> s != null && !s.isBlank())
                .map(Path::of)
                .toArray(Path[]::new);
    }
}
