package ai.hfprune.engine.eval;

import java.util.List;

/**
 * Everything {@code hfprune eval} measured. Parts not asked for are null: {@code reference} and
 * {@code fidelity} without a reference model, {@code data} and {@code perplexity} without text data.
 *
 * @param windows windows of {@code seqLen} tokens the perplexity and fidelity were computed on
 */
public record EvalReport(ModelId model, ModelId reference, String data, int seqLen, int windows,
                         Perplexity perplexity, Fidelity fidelity, List<TaskResult> tasks) {

    public record ModelId(String name, String sha256) {
    }

    public EvalReport {
        tasks = List.copyOf(tasks);
    }
}
