package ai.hfprune.tests;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the README promises about its commands is what CI and the Docker build really run. */
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
}
