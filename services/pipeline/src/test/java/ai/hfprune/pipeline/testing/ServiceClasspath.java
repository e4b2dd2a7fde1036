package ai.hfprune.pipeline.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * The class path a service's image runs with: the module's classes and its runtime dependencies as Maven resolves
 * them ({@code target/runtime-classpath.txt}, written by the module's build), without the test dependencies. Runs
 * programs on it in a fresh JVM, so that what a service's own tests have on their class path cannot hide a missing or
 * an unwanted jar.
 */
public final class ServiceClasspath {

    /** What a program run on the class path did. */
    public record Run(int exitCode, String output) {
    }

    private ServiceClasspath() {
    }

    /** target/classes, then the runtime jars. */
    public static List<Path> entries() throws IOException {
        Path file = Path.of("target/runtime-classpath.txt");
        List<Path> entries = new ArrayList<>();
        entries.add(Path.of("target/classes").toAbsolutePath());
        String text = Files.readString(file).strip();
        if (!text.isEmpty()) {
            Arrays.stream(text.split(java.io.File.pathSeparator)).map(Path::of).forEach(entries::add);
        }
        return entries;
    }

    /** Runs {@code java -cp <the class path> args…} without the HFPRUNE_ environment of the test's JVM. */
    public static Run java(String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m", "-cp", entries().stream().map(Path::toString).collect(Collectors.joining(java.io.File.pathSeparator))));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().keySet().removeIf(k -> k.startsWith("HFPRUNE_"));
        Process p = pb.start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return new Run(p.waitFor(), output);
    }

    /**
     * Whether each class can be loaded, initialised and its methods' and constructors' signatures resolved on the class
     * path (a signature naming a class that is absent fails here, as it would when the service first calls it).
     *
     * @return class name → "loaded", or "missing: …" with the error
     */
    public static Map<String, String> probe(String... classNames) throws IOException, InterruptedException {
        Path source = Files.createTempFile("Probe", ".java");
        try {
            Files.writeString(source, """
                    public class Probe {
                        public static void main(String[] names) {
                            for (String n : names) {
                                try {
                                    Class<?> c = Class.forName(n, true, Probe.class.getClassLoader());
                                    c.getDeclaredMethods();
                                    c.getDeclaredConstructors();
                                    c.getDeclaredFields();
                                    System.out.println(n + "\\tloaded");
                                } catch (ClassNotFoundException | LinkageError e) {
                                    System.out.println(n + "\\tmissing: " + e);
                                }
                            }
                        }
                    }
                    """);
            List<String> args = new ArrayList<>(List.of(source.toString()));
            args.addAll(List.of(classNames));
            Run run = java(args.toArray(String[]::new));
            if (run.exitCode() != 0) {
                throw new IllegalStateException("the probe failed: " + run.output());
            }
            Map<String, String> result = new TreeMap<>();
            run.output().lines().filter(l -> l.contains("\t")).forEach(l -> result.put(l.substring(0, l.indexOf('\t')),
                    l.substring(l.indexOf('\t') + 1)));
            return result;
        } finally {
            Files.deleteIfExists(source);
        }
    }
}
