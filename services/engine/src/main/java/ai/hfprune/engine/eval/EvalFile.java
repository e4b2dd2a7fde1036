package ai.hfprune.engine.eval;

import ai.hfprune.engine.io.AtomicFiles;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.file.Path;

/**
 * {@code eval.json}, written atomically:
 * <pre>{"format":"hfprune.eval/1","model":{"name":…,"sha256":…},"reference":{…},"data":…,"seq_len":T,"windows":N,
 *  "tokens":predicted tokens,"nll":mean nats/token,"perplexity":…,"kl":…,"top1":…,"positions":…,
 *  "tasks":{"boolq":{"n":…,"acc":…,"acc_stderr":…,"acc_norm":…,"acc_norm_stderr":…},…}}</pre>
 * Keys of parts not measured are left out; a standard error that does not exist (n &lt; 2) is null.
 */
public final class EvalFile {

    public static final String FORMAT = "hfprune.eval/1";
    private static final ObjectMapper JSON = new ObjectMapper();

    private EvalFile() {
    }

    public static void write(Path file, EvalReport report) {
        ObjectNode root = toJson(report);
        AtomicFiles.write(file, out -> JSON.writerWithDefaultPrettyPrinter().writeValue(out, root));
    }

    public static ObjectNode toJson(EvalReport r) {
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.putObject("model").put("name", r.model().name()).put("sha256", r.model().sha256());
        if (r.reference() != null) {
            root.putObject("reference").put("name", r.reference().name()).put("sha256", r.reference().sha256());
        }
        if (r.perplexity() != null) {
            root.put("data", r.data());
            root.put("seq_len", r.seqLen());
            root.put("windows", r.windows());
            root.put("tokens", r.perplexity().tokens());
            number(root, "nll", r.perplexity().meanNll());
            number(root, "perplexity", r.perplexity().perplexity());
        }
        if (r.fidelity() != null) {
            number(root, "kl", r.fidelity().kl());
            number(root, "top1", r.fidelity().top1());
            root.put("positions", r.fidelity().positions());
        }
        if (!r.tasks().isEmpty()) {
            ObjectNode tasks = root.putObject("tasks");
            for (TaskResult t : r.tasks()) {
                ObjectNode task = tasks.putObject(t.name());
                task.put("n", t.n());
                number(task, "acc", t.acc());
                number(task, "acc_stderr", t.accStderr());
                number(task, "acc_norm", t.accNorm());
                number(task, "acc_norm_stderr", t.accNormStderr());
            }
        }
        return root;
    }

    /** JSON has no NaN or infinity: such values are written as null. */
    private static void number(ObjectNode node, String key, double value) {
        if (Double.isFinite(value)) {
            node.put(key, value);
        } else {
            node.putNull(key);
        }
    }
}
