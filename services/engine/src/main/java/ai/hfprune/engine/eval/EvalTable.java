package ai.hfprune.engine.eval;

import java.util.Locale;

/** The terminal summary of an {@link EvalReport}. */
public final class EvalTable {

    private EvalTable() {
    }

    public static String render(EvalReport r) {
        StringBuilder s = new StringBuilder();
        line(s, "model      %s (sha256 %s)", r.model().name(), shortSha(r.model().sha256()));
        if (r.reference() != null) {
            line(s, "reference  %s (sha256 %s)", r.reference().name(), shortSha(r.reference().sha256()));
        }
        if (r.perplexity() != null) {
            line(s, "data       %s: %d windows of %d tokens", r.data(), r.windows(), r.seqLen());
            line(s, "perplexity %.4f  (mean NLL %.4f nats/token over %d predicted tokens)",
                    r.perplexity().perplexity(), r.perplexity().meanNll(), r.perplexity().tokens());
        }
        if (r.fidelity() != null) {
            line(s, "KL(ref||model) %.6f nats/token   top-1 agreement %.4f  (%d positions)",
                    r.fidelity().kl(), r.fidelity().top1(), r.fidelity().positions());
        }
        if (!r.tasks().isEmpty()) {
            s.append('\n');
            line(s, "%-16s %6s %8s %8s %9s %8s", "task", "n", "acc", "stderr", "acc_norm", "stderr");
            for (TaskResult t : r.tasks()) {
                line(s, "%-16s %6d %8.4f %8s %9.4f %8s", t.name(), t.n(), t.acc(), stderr(t.accStderr()),
                        t.accNorm(), stderr(t.accNormStderr()));
            }
        }
        return s.toString();
    }

    private static String stderr(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.4f", v) : "n/a";
    }

    private static String shortSha(String sha) {
        return sha.length() > 12 ? sha.substring(0, 12) + "…" : sha;
    }

    private static void line(StringBuilder s, String format, Object... args) {
        s.append(String.format(Locale.ROOT, format, args)).append('\n');
    }
}
