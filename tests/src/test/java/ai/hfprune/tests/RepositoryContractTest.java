package ai.hfprune.tests;

import ai.hfprune.pipeline.common.PipelineConfig;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the README promises about its commands is what CI and the Docker build really run; the deployment files set real settings. */
class RepositoryContractTest {

    private static Path root() {
        return RepositoryRoot.find();
    }

    @Test
    void ciRunsTheReadmeTestCommand() throws IOException {
        String readme = Files.readString(root().resolve("README.md"));
        String ci = Files.readString(root().resolve(".ci/run"));
        Matcher m = Pattern.compile("\\n(mvn [^\\n#]*?verify)\\s+# the tests").matcher(readme);
        assertTrue(m.find(), "the README's quick start names no test command");
        assertTrue(ci.lines().anyMatch(line -> line.strip().equals(m.group(1).strip())),
                ".ci/run does not run the README's test command: " + m.group(1));
    }

    @Test
    void theDockerBuildStageIsTheReadmeBuildCommand() throws IOException {
        String readme = Files.readString(root().resolve("README.md"));
        String dockerfile = Files.readString(root().resolve("infra/Dockerfile"));
        Matcher m = Pattern.compile("(?m)^RUN (mvn .*)$").matcher(dockerfile);
        assertTrue(m.find(), "the Dockerfile builds nothing with Maven");
        assertTrue(readme.contains("`" + m.group(1) + "`"), "the README does not give the Docker build command: " + m.group(1));
    }

    /** Every HFPRUNE_ variable the containers set is a setting, and their HTTP endpoints listen beyond loopback. */
    @Test
    void theContainersSetKnownSettingsAndListenOnEveryInterface() throws IOException {
        Map<String, String> compose = new LinkedHashMap<>();
        Matcher m = Pattern.compile("(?m)^\\s+(HFPRUNE_[A-Z0-9_]+):\\s*\"?([^\"\\n]*)\"?\\s*$")
                .matcher(Files.readString(root().resolve("docker-compose.yml")));
        while (m.find()) {
            compose.put(m.group(1), m.group(2).strip());
        }
        Map<String, String> image = new LinkedHashMap<>();
        String instructions = Files.readString(root().resolve("infra/Dockerfile")).replaceAll("(?m)^\\s*#.*$", ""); // not comments
        m = Pattern.compile("(HFPRUNE_[A-Z0-9_]+)=(\\S+)").matcher(instructions);
        while (m.find()) {
            image.put(m.group(1), m.group(2));
        }
        Set<String> known = PipelineConfig.SETTINGS.keySet().stream().map(PipelineConfig::envName)
                .collect(Collectors.toCollection(java.util.HashSet::new));
        known.addAll(Set.of("HFPRUNE_MKL_OVERRIDE", "HFPRUNE_JAVA_OPTS")); // read by infra/mkl-override.sh and ./hfprune
        known.add("HFPRUNE_DIGEST_CACHE"); // read by the engine's DigestCache (not a pipeline setting)
        for (String name : union(compose.keySet(), image.keySet())) {
            assertTrue(known.contains(name), name + " names no setting (known: " + known + ")");
        }
        assertEquals("0.0.0.0", compose.get("HFPRUNE_METRICS_BIND_ADDRESS"), "docker-compose.yml");
        assertEquals("0.0.0.0", image.get("HFPRUNE_METRICS_BIND_ADDRESS"), "infra/Dockerfile");
        assertEquals("127.0.0.1", PipelineConfig.defaults().get("metrics.bind.address"), "local runs stay on this machine");
    }

    private static Set<String> union(Set<String> a, Set<String> b) {
        Set<String> all = new TreeSet<>(a);
        all.addAll(b);
        return all;
    }
}
