package ai.hfprune.tests;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the HTML report tests share: the skip where Chromium is missing (checked before each test, so Maven counts every
 * test as skipped with its reason), and opening a page in headless Chromium: its DOM after the scripts ran (with the
 * status that common.js writes), its console messages, and a screenshot under target/report-screenshots/.
 */
abstract class ChromiumTestBase {

    private static final List<String> FLAGS = List.of("--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--no-first-run", "--virtual-time-budget=15000");
    private static final Pattern STATUS = Pattern.compile("<pre id=\"hfprune-status\" data-state=\"done\">(\\{.*?)</pre>", Pattern.DOTALL);
    static final Path SCREENSHOTS = Path.of("target", "report-screenshots");

    @TempDir
    Path tmp;

    /** What a page drew: common.js' status ({"errors", "charts": {id: {series: [items, sum]}}, "tables": {id: rows}}). */
    record Page(JsonNode status) {
        JsonNode chart(String id) {
            JsonNode c = status.at("/charts/" + id);
            assertTrue(c.isObject(), "no chart " + id + " in " + status);
            return c;
        }

        int items(String chart, String series) {
            return series(chart, series).get(0).asInt();
        }

        double sum(String chart, String series) {
            return series(chart, series).get(1).asDouble();
        }

        private JsonNode series(String chart, String series) {
            JsonNode s = chart(chart).get(series);
            assertTrue(s != null && s.isArray(), "chart " + chart + " has no series '" + series + "': " + chart(chart));
            return s;
        }
    }

    @BeforeEach
    void requireChromium() {
        System.setProperty("ai.djl.offline", "true");
        Assumptions.assumeTrue(chromium() != null, "chromium is not installed (apt-get install chromium; .ci/run installs it"
                + " as root): the HTML reports are not opened in a browser");
    }

    /**
     * Opens {@code html} from the file system, checks that its scripts ran to the end without an error or a console
     * message, and saves a 1280×{@code height} screenshot as target/report-screenshots/{@code name}.png.
     */
    Page open(Path html, String name, int height) throws Exception {
        String url = html.toAbsolutePath().toUri().toString();
        Run dom = chromium(List.of("--enable-logging=stderr", "--v=0", "--dump-dom", url));
        Matcher m = STATUS.matcher(dom.stdout());
        assertTrue(m.find(), "the page's scripts did not finish (no status); stderr:\n" + dom.stderr());
        JsonNode status = new ObjectMapper().readTree(unescape(m.group(1)));
        assertEquals(0, status.get("errors").size(), "errors in the page: " + status.get("errors"));
        List<String> console = dom.stderr().lines().filter(l -> l.contains(":CONSOLE(")).toList();
        assertEquals(List.of(), console, "console messages");

        Files.createDirectories(SCREENSHOTS);
        Path png = SCREENSHOTS.resolve(name + ".png").toAbsolutePath();
        Files.deleteIfExists(png);
        chromium(List.of("--window-size=1280," + height, "--hide-scrollbars", "--screenshot=" + png, url));
        assertTrue(Files.size(png) > 10_000, "screenshot " + png);
        return new Page(status);
    }

    private record Run(String stdout, String stderr) {
    }

    private Run chromium(List<String> args) throws Exception {
        List<String> command = new ArrayList<>();
        command.add(chromium());
        command.addAll(FLAGS);
        command.add("--user-data-dir=" + Files.createTempDirectory(tmp, "chromium-profile"));
        command.addAll(args);
        Path out = Files.createTempFile(tmp, "chromium", ".out");
        Path err = Files.createTempFile(tmp, "chromium", ".err");
        Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("chromium did not finish in 120 s: " + command);
        }
        return new Run(Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
    }

    /** Debian's chromium (or another Chromium-based browser) on the PATH; null when there is none. */
    static String chromium() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            for (String name : List.of("chromium", "chromium-browser", "google-chrome")) {
                Path exe = Path.of(dir, name);
                if (Files.isExecutable(exe)) {
                    return exe.toString();
                }
            }
        }
        return null;
    }

    /** The text of the status element as the DOM dump serializes it (only &, <, > and nbsp are escaped in text). */
    private static String unescape(String text) {
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u00a0").replace("&amp;", "&");
    }
}
