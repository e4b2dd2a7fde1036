package ai.hfprune.cli;

import ai.hfprune.engine.eval.Perplexity;
import ai.hfprune.engine.importance.Criterion;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.math.BigDecimal;
import java.math.MathContext;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;

/**
 * What {@code hfprune bench fidelity} measured, and its two renderings: Markdown tables of the mean ± standard
 * deviation over calibration sets (one table per metric, a row per setting and method, a column per criterion), and
 * JSON with every single number.
 */
record FidelityStudy(String model, String sha256, long denseParameters, Path calibration, int calibrationSets,
                     int windowsPerSet, int seqLen, Path evaluation, int evaluationWindows, Perplexity dense,
                     List<Criterion> criteria, List<FidelityStudyCommand.Setting> settings, List<Method> methods,
                     List<Result> results) {

    /** What is done after the cut. */
    enum Method {
        /** The cut alone: the dense model with the removed units' weights sliced away. */
        MASK("mask"),
        /** The cut, then the least-squares refit of down_proj/o_proj from the calibration Gram statistics. */
        LSTSQ("+refit"),
        /** The criterion's kept counts per layer, the members chosen by the refit's error (ObsSelection), then the refit. */
        OBS("obs+refit"),
        /** The refit, then recovery by self-distillation on the calibration windows. */
        RECOVER("+refit+recovery"),
        /** The refit-aware selection and the refit, then recovery. */
        OBS_RECOVER("obs+refit+recovery");

        final String label;

        Method(String label) {
            this.label = label;
        }

        String id() {
            return name().toLowerCase(Locale.ROOT);
        }

        static Method parse(String s) {
            for (Method m : values()) {
                if (m.id().equalsIgnoreCase(s.trim())) {
                    return m;
                }
            }
            throw new ai.hfprune.engine.HfpruneException("unknown method '" + s + "' (choose from mask, lstsq, obs, recover, obs_recover)");
        }
    }

    /** One pruned model's measurements: a criterion at a setting, after a method, calibrated on one set. */
    record Result(Criterion criterion, FidelityStudyCommand.Setting setting, Method method, int calibrationSet,
                  long parameters, Perplexity perplexity, double kl, double top1) {
    }

    private record Metric(String title, ToDoubleFunction<Result> value, boolean higherIsBetter) {
    }

    private static final List<Metric> METRICS = List.of(
            new Metric("KL(dense‖pruned), nats per token — lower is better", Result::kl, false),
            new Metric("top-1 agreement with the dense model — higher is better", Result::top1, true),
            new Metric("perplexity — lower is better", r -> r.perplexity().perplexity(), false));

    double[] values(Criterion c, FidelityStudyCommand.Setting s, Method m, ToDoubleFunction<Result> value) {
        return results.stream().filter(r -> r.criterion() == c && r.setting().equals(s) && r.method() == m)
                .mapToDouble(value).toArray();
    }

    long parameters(FidelityStudyCommand.Setting s) {
        return results.stream().filter(r -> r.setting().equals(s)).findFirst().orElseThrow().parameters();
    }

    String markdown() {
        StringBuilder s = new StringBuilder();
        line(s, "Fidelity study: %s (%,d parameters), uniform allocation, pruned in memory.", model, denseParameters);
        line(s, "Calibration: %d set%s of %d windows × %d tokens (%,d tokens each) of %s, disjoint.", calibrationSets,
                calibrationSets == 1 ? "" : "s", windowsPerSet, seqLen, (long) windowsPerSet * seqLen, calibration.getFileName());
        line(s, "Evaluation: %d windows × %d tokens of %s (%,d predicted tokens), the same for every model.", evaluationWindows,
                seqLen, evaluation.getFileName(), dense.tokens());
        line(s, "Dense perplexity: %s. Cells: mean ± standard deviation over the calibration sets; best criterion per row in bold.",
                sig(dense.perplexity()));
        for (Metric metric : METRICS) {
            s.append('\n');
            line(s, "%s", metric.title());
            s.append('\n');
            StringBuilder header = new StringBuilder("| mlp | attn | params | method |");
            StringBuilder rule = new StringBuilder("|---:|---:|---:|---|");
            for (Criterion c : criteria) {
                header.append(' ').append(c.id()).append(" |");
                rule.append("---:|");
            }
            line(s, "%s", header);
            line(s, "%s", rule);
            for (FidelityStudyCommand.Setting setting : settings) {
                for (Method method : methods) {
                    double[] means = criteria.stream()
                            .mapToDouble(c -> mean(values(c, setting, method, metric.value()))).toArray();
                    double best = metric.higherIsBetter() ? Arrays.stream(means).max().orElseThrow()
                            : Arrays.stream(means).min().orElseThrow();
                    StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "| %s | %s | %,d | %s |",
                            setting.mlpRatio(), setting.attnRatio(), parameters(setting), method.label));
                    for (int i = 0; i < criteria.size(); i++) {
                        double[] v = values(criteria.get(i), setting, method, metric.value());
                        double sd = sd(v);
                        // a criterion that reads no data (magnitude, random) cuts the same set every time: its spread is 0
                        // up to the rounding of the mean
                        String cell = sig(means[i]) + (v.length > 1 ? " ± " + (sd <= 1e-12 * Math.abs(means[i]) ? "0" : sig(sd, 2)) : "");
                        row.append(' ').append(means[i] == best && criteria.size() > 1 ? "**" + cell + "**" : cell).append(" |");
                    }
                    line(s, "%s", row);
                }
            }
        }
        return s.toString();
    }

    ObjectNode json(long seed) {
        ObjectNode root = new ObjectMapper().createObjectNode();
        root.put("format", "hfprune.fidelity-study/2");
        root.putObject("model").put("name", model).put("sha256", sha256).put("parameters", denseParameters);
        root.putObject("calibration").put("data", calibration.toString()).put("sets", calibrationSets)
                .put("windows", windowsPerSet).put("seq_len", seqLen).put("tokens", (long) windowsPerSet * seqLen)
                .put("random_seed", seed);
        root.putObject("evaluation").put("data", evaluation.toString()).put("windows", evaluationWindows)
                .put("seq_len", seqLen).put("tokens", (long) evaluationWindows * seqLen).put("predicted_tokens", dense.tokens());
        ObjectNode d = root.putObject("dense");
        number(d, "nll", dense.meanNll());
        number(d, "perplexity", dense.perplexity());
        root.put("allocation", "uniform");
        ArrayNode rows = root.putArray("results");
        for (Result r : results) {
            ObjectNode row = rows.addObject();
            row.put("criterion", r.criterion().id());
            row.put("mlp_ratio", r.setting().mlpRatio());
            row.put("attn_ratio", r.setting().attnRatio());
            row.put("method", r.method().id());
            row.put("calibration_set", r.calibrationSet());
            row.put("parameters", r.parameters());
            number(row, "nll", r.perplexity().meanNll());
            number(row, "perplexity", r.perplexity().perplexity());
            number(row, "kl", r.kl());
            number(row, "top1", r.top1());
        }
        return root;
    }

    static double mean(double[] v) {
        return Arrays.stream(v).average().orElse(Double.NaN);
    }

    /** The sample standard deviation (n − 1). */
    static double sd(double[] v) {
        double m = mean(v);
        return Math.sqrt(Arrays.stream(v).map(x -> (x - m) * (x - m)).sum() / Math.max(1, v.length - 1));
    }

    static String sig(double x) {
        return sig(x, 4);
    }

    /** {@code digits} significant digits, never in scientific notation. */
    static String sig(double x, int digits) {
        if (!Double.isFinite(x)) {
            return String.valueOf(x);
        }
        return new BigDecimal(x).round(new MathContext(digits)).stripTrailingZeros().toPlainString();
    }

    private static void number(ObjectNode node, String key, double value) {
        if (Double.isFinite(value)) {
            node.put(key, value);
        } else {
            node.putNull(key);
        }
    }

    private static void line(StringBuilder s, String format, Object... args) {
        s.append(String.format(Locale.ROOT, format, args)).append('\n');
    }
}
