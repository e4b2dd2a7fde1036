package ai.hfprune.pipeline.pruner;

import ai.hfprune.engine.HfpruneException;

import java.nio.file.Path;

/**
 * Where a model version goes: {@code <root>/<model>/<criterion>/v<version>}, with names reduced to safe characters
 * and the result checked to lie inside the root, whatever a record says.
 */
final class VersionPaths {
    private VersionPaths() {
    }

    static Path of(Path root, String modelName, String criterion, int version) {
        Path base = root.toAbsolutePath().normalize();
        Path dir = base.resolve(safe(modelName)).resolve(safe(criterion)).resolve("v" + version).normalize();
        if (!dir.startsWith(base) || dir.equals(base)) {
            throw new HfpruneException("refusing to write outside the output root: " + dir);
        }
        return dir;
    }

    static String safe(String name) {
        String s = name.replaceAll("[^A-Za-z0-9._-]", "_");
        return s.isEmpty() || s.chars().allMatch(c -> c == '.') ? "_" : s;
    }
}
