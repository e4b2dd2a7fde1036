package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufFile.GgmlType;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.report.PruneReportPage;

import java.nio.file.Path;
import java.util.function.LongConsumer;

/**
 * Saves a pruned model into one output directory, atomically ({@link AtomicDirectory}): the Hugging Face files
 * ({@link HfExport}), {@code model.gguf} ({@link GgufExport}), or both, and {@code prune-report.json} with its page {@code report.html}
 * ({@link PruneReportPage}). Nothing of either appears unless all of it was written.
 */
public final class ModelExport {
    private ModelExport() {
    }

    /**
     * @param maxShardBytes Hugging Face shards: transformers' default for save_pretrained is 5GB, hfprune's CLI's 2GB
     * @param ggufType      tensor type of model.gguf's matrices (norms stay F32)
     */
    public record Options(ExportFormat format, GgmlType ggufType, long maxShardBytes, boolean force) {
        public Options {
            if (maxShardBytes <= 0) {
                throw new HfpruneException("--max-shard-size must be positive, got " + maxShardBytes + " bytes");
            }
            if (ggufType != GgmlType.F32 && ggufType != GgmlType.F16 && ggufType != GgmlType.Q8_0) {
                throw new HfpruneException("--gguf-type must be f32, f16 or q8_0, not " + ggufType);
            }
        }

        public static Options hf(long maxShardBytes, boolean force) {
            return new Options(ExportFormat.HF, GgmlType.F32, maxShardBytes, force);
        }
    }

    /**
     * Refuses what can be refused before long work: an output that exists (see {@link HfExport#checkOutput}) and, for
     * either format, an input whose pruned model it cannot hold.
     */
    public static void checkBefore(Path input, Checkpoint source, Path out, Options options) {
        HfExport.checkOutput(input, out, options.force());
        if (options.format().writesHf() && source != null) {
            HfExport.checkSource(source);
        }
        if (options.format().writesGguf() && source != null) {
            GgufExport.checkSource(source);
        }
    }

    /** @param progress told the element count of each tensor as it is written (once per format) */
    public static void save(Checkpoint source, PrunedModel model, PruneReport report, Path out, Options options,
                            LongConsumer progress) {
        HfExport.checkOutput(source.path(), out, options.force());
        if (options.format().writesHf()) {
            HfExport.checkSource(source);
        }
        if (options.format().writesGguf()) { // before the directory is created: a refusal leaves nothing behind
            GgufExport.checkSource(source);
            GgufExport.check(model.widths());
        }
        report.setOutput(options.format(), GgufExport.architecture(model.widths()),
                options.ggufType().name().toLowerCase(java.util.Locale.ROOT));
        AtomicDirectory.write(out, options.force(), dir -> {
            if (options.format().writesHf()) {
                HfExport.writeInto(source, model, dir, options.maxShardBytes(), progress);
            }
            if (options.format().writesGguf()) {
                GgufExport.write(source, model, options.ggufType(), dir.resolve(GgufExport.FILE), progress);
            }
            report.write(dir);
            PruneReportPage.write(dir, report); // the same report, drawn
        });
    }
}
