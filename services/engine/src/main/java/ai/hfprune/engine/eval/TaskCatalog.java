package ai.hfprune.engine.eval;

import ai.hfprune.engine.HfpruneException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Turns a {@code --tasks} value into task files: {@code all} (every task file of the default folder), a folder
 * (every task file in it), or a comma-separated list of task names (looked up in the default folder, see
 * {@link TaskFiles#taskName}) and task file paths.
 */
public final class TaskCatalog {

    public static final String ALL = "all";

    private TaskCatalog() {
    }

    /** @param defaultDir asked for only when {@code spec} names tasks or says {@code all} */
    public static List<Path> resolve(String spec, Supplier<Path> defaultDir) {
        if (spec == null || spec.isBlank()) {
            throw new HfpruneException("--tasks is empty: give task names, a folder of task files, or " + ALL);
        }
        if (spec.strip().equals(ALL)) {
            return filesIn(defaultDir.get());
        }
        Path asDir = Path.of(spec.strip());
        if (Files.isDirectory(asDir)) {
            return filesIn(asDir);
        }
        Set<Path> files = new LinkedHashSet<>();
        for (String item : spec.split(",")) {
            String name = item.strip();
            if (name.isEmpty()) {
                continue;
            }
            Path asFile = Path.of(name);
            files.add(TaskFiles.isTaskFile(asFile) ? asFile : byName(name, defaultDir.get()));
        }
        if (files.isEmpty()) {
            throw new HfpruneException("--tasks names no task");
        }
        return List.copyOf(files);
    }

    private static Path byName(String name, Path dir) {
        for (Path file : Files.isDirectory(dir) ? filesIn(dir) : List.<Path>of()) {
            if (TaskFiles.taskName(file).equals(name)) {
                return file;
            }
        }
        String known = Files.isDirectory(dir)
                ? filesIn(dir).stream().map(TaskFiles::taskName).collect(Collectors.joining(", "))
                : "none: " + dir + " is not a folder";
        throw new HfpruneException("unknown task \"" + name + "\"; tasks in " + dir + ": " + known
                + " (or give a task file, a folder of task files, or " + ALL + ")");
    }

    /** The .jsonl and .txt files of {@code dir}, by name. */
    private static List<Path> filesIn(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new HfpruneException("task folder " + dir + " does not exist");
        }
        List<Path> files = new ArrayList<>();
        try (Stream<Path> list = Files.list(dir)) {
            list.filter(TaskFiles::isTaskFile).sorted().forEach(files::add);
        } catch (IOException e) {
            throw new HfpruneException("cannot list task folder " + dir + ": " + e.getMessage(), e);
        }
        if (files.isEmpty()) {
            throw new HfpruneException("task folder " + dir + " holds no task files (.jsonl or .txt)");
        }
        return files;
    }
}
