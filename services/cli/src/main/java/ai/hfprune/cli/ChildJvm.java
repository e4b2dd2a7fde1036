package ai.hfprune.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The command line of an hfprune command run as a child JVM of this one (scorer processes of {@code bench pipeline},
 * the services of {@code bench chaos}): this JVM's java and class path, C1 only, offline DJL, one PyTorch thread unless
 * this JVM says otherwise, quiet logs, and this JVM's {@code hfprune.*} system properties (where the assets are, among
 * others). The environment is inherited by the process builder, so the MKL override preloaded here is preloaded there.
 */
public final class ChildJvm {
    private ChildJvm() {
    }

    /**
     * @param heap       the child's -Xmx, for example "2g"
     * @param jvmOptions further JVM options, before the class path
     * @param arguments  the hfprune command and its arguments
     */
    public static List<String> command(String heap, List<String> jvmOptions, List<String> arguments) {
        List<String> c = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx" + heap, "-XX:TieredStopAtLevel=1", "-Dai.djl.offline=true",
                "-Dai.djl.pytorch.num_threads=" + System.getProperty("ai.djl.pytorch.num_threads", "1"),
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-Dorg.slf4j.simpleLogger.log.org.apache.kafka=error"));
        c.addAll(jvmOptions);
        c.addAll(List.of("-cp", System.getProperty("java.class.path")));
        System.getProperties().stringPropertyNames().stream().filter(k -> k.startsWith("hfprune.")).sorted()
                .forEach(k -> c.add("-D" + k + "=" + System.getProperty(k)));
        c.add(Main.class.getName());
        c.addAll(arguments);
        return List.copyOf(c);
    }
}
