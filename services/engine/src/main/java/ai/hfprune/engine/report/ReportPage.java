package ai.hfprune.engine.report;

import ai.hfprune.engine.io.AtomicFiles;

import ai.hfprune.engine.HfpruneException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One self-contained HTML page: the template {@code page.html} with Apache ECharts (read from its WebJar on the
 * classpath), the shared {@code common.js}, the data as JSON and the script of one kind of report, all inlined, so the
 * file opens offline from the file system. Each report kind (the prune report, the pipeline's version index, the
 * fidelity study) gives its title, its script and its data; the script draws the charts from the data, and
 * {@code common.js} records in the page what was drawn (see there).
 */
public final class ReportPage {
    private ReportPage() {
    }

    private static final JsonMapper JSON = new JsonMapper();
    private static final Pattern SLOT = Pattern.compile("\\{\\{([A-Z]+)}}");
    private static final String WEBJAR = "META-INF/resources/webjars/echarts/";
    private static final String WEBJAR_PROPERTIES = "META-INF/maven/org.webjars.npm/echarts/pom.properties";

    /**
     * @param script a resource beside {@code owner} (e.g. {@code "prune.js"}) that draws the charts from the data
     * @param data   what the script reads, as {@code hfprune.data}
     */
    public static String html(String title, Class<?> owner, String script, JsonNode data) {
        Map<String, String> slots = Map.of(
                "TITLE", escapeHtml(title),
                "COMMON", resource(ReportPage.class, "common.js"),
                "ECHARTS", echarts(),
                "DATA", json(data),
                "SCRIPT", resource(owner, script));
        Matcher m = SLOT.matcher(resource(ReportPage.class, "page.html"));
        StringBuilder page = new StringBuilder();
        while (m.find()) { // one pass over the template: nothing inlined is ever searched for slots
            m.appendReplacement(page, Matcher.quoteReplacement(slots.get(m.group(1))));
        }
        return m.appendTail(page).toString();
    }

    /** Writes the page atomically ({@link AtomicFiles}: readable as the model beside it, never half-written). */
    public static void write(Path file, String html) {
        AtomicFiles.writeString(file, html);
    }

    /** {@code x} rounded to 4 significant digits: enough for a chart, and it keeps large models' pages small. */
    public static double round(double x) {
        return Double.isFinite(x) && x != 0 ? Double.parseDouble(String.format(java.util.Locale.ROOT, "%.3e", x)) : x;
    }

    /** JSON that cannot end its script element: every '<' (only ever inside a string) becomes \u003c. */
    private static String json(JsonNode data) {
        try {
            return JSON.writeValueAsString(data).replace("<", "\\u003c");
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The minified bundle of the ECharts WebJar on the classpath, whichever version the build pins. */
    private static String echarts() {
        Properties p = new Properties();
        try (InputStream in = ReportPage.class.getClassLoader().getResourceAsStream(WEBJAR_PROPERTIES)) {
            if (in == null) {
                throw new IllegalStateException("the ECharts WebJar is not on the classpath (" + WEBJAR_PROPERTIES + ")");
            }
            p.load(in);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return classpath(WEBJAR + p.getProperty("version") + "/dist/echarts.min.js");
    }

    private static String resource(Class<?> owner, String name) {
        return classpath(owner.getClassLoader(), owner.getPackageName().replace('.', '/') + "/" + name);
    }

    private static String classpath(String path) {
        return classpath(ReportPage.class.getClassLoader(), path);
    }

    private static String classpath(ClassLoader loader, String path) {
        try (InputStream in = loader.getResourceAsStream(path)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + path);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read resource " + path, e);
        }
    }

    private static String escapeHtml(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
