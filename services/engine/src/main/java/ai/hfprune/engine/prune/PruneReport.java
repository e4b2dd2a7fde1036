package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.AtomicFiles;
import ai.hfprune.engine.compensate.Compensation;
import ai.hfprune.engine.compensate.GramStats;
import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.recover.RecoveryOptions;
import ai.hfprune.engine.recover.RecoveryResult;
import ai.hfprune.engine.model.Checkpoint;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * {@code prune-report.json}, written beside a pruned model: where it came from (input model and sha256, criterion and
 * calibration), how it was pruned (ratios, allocation, kept indices per layer), parameters before and after, and a
 * {@code metrics} object that evaluation fills in later ({@link #addMetrics}).
 * <pre>{"format":"hfprune.prune-report/1","input":{"name","sha256","format"},"scores":{"criterion","windows","tokens","seq_len"},
 *  "options":{"mlp_ratio","attn_ratio","allocation","min_keep_fraction","round_to","skip_layers"},
 *  "parameters":{"before","after","removed_fraction"},
 *  "layers":[{"index","mlp":{"before","after","kept":[…]},"attention":{"kv_groups_before","kv_groups_kept":[…],"heads_kept":[…]}}],
 *  "metrics":{}}</pre>
 */
public final class PruneReport {

    public static final String FILE = "prune-report.json";
    public static final String FORMAT = "hfprune.prune-report/1";
    private static final JsonMapper JSON = new JsonMapper();

    private final ObjectNode root;
    /** The scores that chose the cut, for report.html; not in the JSON, and null in a report read back from disk. */
    private final Scores scores;

    private PruneReport(ObjectNode root, Scores scores) {
        this.root = root;
        this.scores = scores;
    }

    /**
     * @param input  the checkpoint that was pruned
     * @param scores the scores that chose what {@code pruned} keeps
     * @param seqLen the calibration window length the scores were computed with
     */
    public static PruneReport of(Checkpoint input, Scores scores, int seqLen, PrunedModel pruned) {
        ObjectNode o = JSON.createObjectNode();
        o.put("format", FORMAT);
        o.putObject("input")
                .put("name", input.name())
                .put("sha256", input.sha256())
                .put("format", Files.isDirectory(input.path()) ? "huggingface" : "gguf");
        ObjectNode calibration = o.putObject("scores");
        calibration.put("criterion", scores.criterion().id());
        calibration.put("windows", scores.windows());
        calibration.put("tokens", scores.tokens());
        calibration.put("seq_len", seqLen);

        PrunePlan plan = pruned.plan();
        PruneOptions opt = plan.options();
        ObjectNode options = o.putObject("options");
        options.put("mlp_ratio", opt.mlpRatio());
        options.put("attn_ratio", opt.attnRatio());
        options.put("allocation", opt.allocation().id());
        if (opt.allocation() == Allocation.GLOBAL) {
            options.put("min_keep_fraction", opt.minKeepFraction());
        }
        options.put("round_to", opt.roundTo());
        ArrayNode skip = options.putArray("skip_layers");
        opt.skipLayers().forEach(skip::add);

        long parametersBefore = ParameterCount.of(input.weights());
        long parametersAfter = pruned.parameters();
        ObjectNode params = o.putObject("parameters");
        params.put("before", parametersBefore);
        params.put("after", parametersAfter);
        params.put("removed_fraction", parametersBefore == 0 ? 0 : 1 - (double) parametersAfter / parametersBefore);

        ArrayNode layers = o.putArray("layers");
        for (LayerPlan p : plan.layers()) {
            ObjectNode layer = layers.addObject();
            layer.put("index", p.layer());
            ObjectNode mlp = layer.putObject("mlp");
            mlp.put("before", p.originalMlp());
            mlp.put("after", p.keptMlp().length);
            ints(mlp.putArray("kept"), p.keptMlp());
            ObjectNode attn = layer.putObject("attention");
            attn.put("kv_groups_before", p.originalKvGroups());
            attn.put("heads_before", p.originalHeads());
            ints(attn.putArray("kv_groups_kept"), p.keptKvGroups());
            ints(attn.putArray("heads_kept"), p.keptHeads());
        }
        o.putObject("metrics");
        return new PruneReport(o, scores);
    }

    /**
     * Records what compensated the cut: {@code "compensation":{"method","damping","calibration_tokens"}} (the damping and
     * tokens only for a refit).
     */
    public void setCompensation(Compensation method, double damping, GramStats stats) {
        ObjectNode c = root.putObject("compensation");
        c.put("method", method.id());
        if (method.usesStats()) {
            c.put("damping", damping);
            c.put("calibration_tokens", stats.tokens());
            if (method == Compensation.OBS) {
                c.put("output_errors_weighed", stats.hasSensitivity());
            }
        }
    }

    /**
     * Records the recovery by self-distillation: {@code "recovery":{"steps","steps_run","best_step","stop_reason",
     * "learning_rate","lora_rank","train_windows","held_out_windows","held_out_kl_before","held_out_kl_after",
     * "peak_rss_bytes"}}.
     */
    public void setRecovery(RecoveryResult r, RecoveryOptions options, int trainWindows, int heldOutWindows) {
        ObjectNode o = root.putObject("recovery");
        o.put("steps", options.steps());
        o.put("steps_run", r.stepsRun());
        o.put("best_step", r.bestStep());
        o.put("stop_reason", r.stopReason().name().toLowerCase(java.util.Locale.ROOT));
        o.put("learning_rate", r.learningRate());
        o.put("learning_rate_asked", options.learningRate());
        o.put("lora_rank", options.loraRank());
        o.put("train_windows", trainWindows);
        o.put("held_out_windows", heldOutWindows);
        o.put("held_out_kl_before", r.heldOutKlBefore());
        o.put("held_out_kl_after", r.heldOutKlAfter());
        o.put("peak_rss_bytes", r.peakRssBytes());
    }

    /**
     * Records what was written: {@code "output":{"format":"hf|gguf|both"}}, with {@code "gguf":{"file","architecture",
     * "tensor_type"}} when a GGUF file was ({@link ModelExport} calls it).
     */
    public void setOutput(ExportFormat format, String ggufArchitecture, String ggufTensorType) {
        ObjectNode o = root.putObject("output");
        o.put("format", format.id());
        if (format.writesGguf()) {
            o.putObject("gguf").put("file", GgufExport.FILE).put("architecture", ggufArchitecture)
                    .put("tensor_type", ggufTensorType);
        }
    }

    /** The report as JSON (a live view: changes are written by {@link #write}). */
    public ObjectNode json() {
        return root;
    }

    /** The scores the report was made from; null when it was read from disk. */
    public Scores scores() {
        return scores;
    }

    /** Merges {@code metrics} into the {@code metrics} object, as {@link #addMetrics} does, before the report is written. */
    public void putMetrics(Map<String, ?> metrics) {
        ObjectNode target = root.withObjectProperty("metrics");
        metrics.forEach((name, value) -> target.set(name, JSON.valueToTree(value)));
    }

    /** Writes {@code modelDir/prune-report.json} atomically ({@link AtomicFiles}). */
    public void write(Path modelDir) {
        try {
            AtomicFiles.writeString(modelDir.resolve(FILE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n");
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("a report that Jackson cannot write: " + e.getMessage(), e);
        }
    }

    public static PruneReport read(Path modelDir) {
        Path file = modelDir.resolve(FILE);
        if (!Files.isRegularFile(file)) {
            throw new HfpruneException(modelDir + " has no " + FILE + " (not a model written by hfprune prune)");
        }
        try {
            JsonNode root = JSON.readTree(file.toFile());
            if (root == null || !root.isObject() || !FORMAT.equals(root.path("format").asText())) {
                throw new HfpruneException(file + " is not an hfprune prune report (format " + FORMAT + ")");
            }
            return new PruneReport((ObjectNode) root, null);
        } catch (IOException e) {
            throw new HfpruneException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Merges {@code metrics} (names to numbers, strings, maps, records…; Jackson converts them) into the report's
     * {@code metrics} object and rewrites the file atomically; existing metrics of other names are kept.
     */
    public static void addMetrics(Path modelDir, Map<String, ?> metrics) {
        PruneReport report = read(modelDir);
        report.putMetrics(metrics);
        report.write(modelDir);
    }

    private static void ints(ArrayNode array, int[] values) {
        for (int v : values) {
            array.add(v);
        }
    }
}
