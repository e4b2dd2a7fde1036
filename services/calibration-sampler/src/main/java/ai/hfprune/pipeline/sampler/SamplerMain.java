package ai.hfprune.pipeline.sampler;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.model.CheckpointFiles;
import ai.hfprune.pipeline.common.ServiceProcess;

import java.io.PrintWriter;
import java.util.Set;

/**
 * The calibration-sampler's process, in its image ({@code --follow}: then follow the raw-text topic) and as
 * {@code hfprune sampler}: the model is opened without PyTorch, for its identity and tokenizer only.
 */
public final class SamplerMain {
    private SamplerMain() {
    }

    public static ServiceProcess<CheckpointFiles> process(boolean follow) {
        return new ServiceProcess<>("sampler", CheckpointFiles::open, false, (config, topics, model, metrics) -> {
            if (config.get("data").isBlank()) {
                throw new HfpruneException("the calibration data are required for the sampler (HFPRUNE_DATA or --set data=FILES)");
            }
            CalibrationSampler sampler = new CalibrationSampler(config, topics, model, DocumentFiles.parse(config.get("data")),
                    follow, metrics.registry());
            sampler.start();
            return sampler;
        });
    }

    /** After a run that did not fail. */
    public static void ended(CalibrationSampler sampler, PrintWriter out) {
        if (sampler.completed()) {
            out.printf("sent %d batches%n", sampler.batchesSent());
        }
    }

    public static void main(String[] args) {
        System.exit(ServiceProcess.main(args, Set.of("--follow"), (config, flags, out) ->
                ended((CalibrationSampler) process(flags.contains("--follow")).run(config, out), out)));
    }
}
