package ai.hfprune.pipeline.pruner;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.prune.PruneReport;
import ai.hfprune.engine.report.ReportPage;
import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.LayerKept;
import ai.hfprune.schemas.PruneTrigger;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The pruner's reports. Each version's {@code report.html} is written with its model by the engine (ModelExport);
 * {@link #annotate} first puts into its prune-report.json the held-out metrics and the trigger's coverage, so the page
 * shows them. {@link #update} then rewrites {@code index.html} of the criterion's folder ({@code <root>/<model>/<criterion>})
 * from every version written there: KL, perplexity and parameters per version, the fraction of the kept set that changed
 * since the previous written version (as {@link KeptSets#changed} counts it), and coverage over time, drawn by
 * {@code versions.js}. The index is read back from disk, so it also lists versions written before a restart.
 */
public final class VersionIndex {
    private VersionIndex() {
    }

    public static final String FILE = "index.html";
    private static final Logger LOG = LoggerFactory.getLogger(VersionIndex.class);
    private static final JsonMapper JSON = new JsonMapper();
    private static final Pattern VERSION = Pattern.compile("v(\\d+)");

    /**
     * Before a version is saved: its metrics, and {@code "pipeline":{"version","threshold_tokens","snapshot":{"tokens",
     * "windows","batches","stats_tokens","updated_at_millis"}}}.
     */
    public static void annotate(PruneReport report, PruneTrigger trigger, Map<String, Double> metrics) {
        report.putMetrics(metrics);
        CoverageSnapshot s = trigger.getSnapshot();
        ObjectNode p = report.json().putObject("pipeline");
        p.put("version", trigger.getVersion());
        p.put("threshold_tokens", trigger.getThresholdTokens());
        p.putObject("snapshot").put("tokens", s.getTokens()).put("windows", s.getWindows()).put("batches", s.getBatches())
                .put("stats_tokens", s.getStatsTokens()).put("updated_at_millis", s.getUpdatedAtMillis());
    }

    /**
     * After a version is written: rewrites {@code criterionDir/index.html}. A failure is logged, not thrown: the index
     * is a view of the versions, and the version it failed after is written all the same.
     */
    public static void update(Path criterionDir) {
        try {
            ReportPage.write(criterionDir.resolve(FILE), html(criterionDir));
        } catch (HfpruneException | IllegalStateException e) {
            LOG.warn("cannot write the version index of {}: {}", criterionDir, e.getMessage());
        }
    }

    /** The index page of the versions under {@code criterionDir}. */
    public static String html(Path criterionDir) {
        List<Path> dirs = versionDirs(criterionDir);
        ObjectNode data = JSON.createObjectNode();
        data.put("folder", criterionDir.toString());
        ArrayNode versions = data.putArray("versions");
        List<LayerKept> previous = null;
        String title = "hfprune versions in " + criterionDir.getFileName();
        for (Path dir : dirs) {
            JsonNode r = PruneReport.read(dir).json();
            title = "hfprune: versions of " + r.at("/input/name").asText() + " pruned with " + r.at("/scores/criterion").asText();
            ObjectNode v = versions.addObject();
            v.put("version", version(dir));
            v.put("report", dir.getFileName() + "/report.html");
            v.put("tokens", r.at("/scores/tokens").asLong());
            v.set("time_millis", r.at("/pipeline/snapshot/updated_at_millis"));
            for (String metric : List.of("kl", "perplexity", "dense_perplexity", "top1", "recover_kl_after")) {
                v.set(metric, r.at("/metrics/" + metric));
            }
            v.put("parameters", r.at("/parameters/after").asLong());
            v.put("parameters_before", r.at("/parameters/before").asLong());
            List<LayerKept> kept = kept(r);
            if (previous == null) {
                v.putNull("kept_changed");
            } else {
                v.put("kept_changed", KeptSets.changed(previous, kept));
            }
            previous = kept;
        }
        return ReportPage.html(title, VersionIndex.class, "versions.js", data);
    }

    /** The version folders v1, v2, … in version order (AtomicDirectory's hidden temporary siblings are not). */
    private static List<Path> versionDirs(Path criterionDir) {
        try (Stream<Path> entries = Files.list(criterionDir)) {
            return entries.filter(p -> VERSION.matcher(p.getFileName().toString()).matches())
                    .filter(p -> Files.isRegularFile(p.resolve(PruneReport.FILE)))
                    .sorted(Comparator.comparingInt(VersionIndex::version))
                    .toList();
        } catch (IOException e) {
            throw new HfpruneException("cannot list " + criterionDir + ": " + e.getMessage(), e);
        }
    }

    private static int version(Path dir) {
        Matcher m = VERSION.matcher(dir.getFileName().toString());
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    /** The kept MLP neurons and KV groups that prune-report.json records, as the pruner's results carry them. */
    private static List<LayerKept> kept(JsonNode report) {
        List<LayerKept> out = new ArrayList<>();
        for (JsonNode layer : report.get("layers")) {
            out.add(new LayerKept(layer.get("index").asInt(), ints(layer.at("/mlp/kept")), ints(layer.at("/attention/kv_groups_kept"))));
        }
        return out;
    }

    private static List<Integer> ints(JsonNode array) {
        List<Integer> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asInt()));
        return out;
    }
}
