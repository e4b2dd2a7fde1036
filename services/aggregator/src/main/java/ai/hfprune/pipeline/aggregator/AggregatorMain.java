package ai.hfprune.pipeline.aggregator;

import ai.hfprune.engine.model.CheckpointFiles;
import ai.hfprune.pipeline.common.ModelInfo;
import ai.hfprune.pipeline.common.ServiceProcess;

import java.util.List;
import java.util.Set;

/**
 * The aggregator's process, in its image and as {@code hfprune aggregator}: the model is opened without PyTorch, for its
 * identity and layer widths only.
 */
public final class AggregatorMain {
    private AggregatorMain() {
    }

    public static ServiceProcess<CheckpointFiles> process() {
        return new ServiceProcess<>("aggregator", CheckpointFiles::open, false, (config, topics, model, metrics) -> {
            AggregatorService service = new AggregatorService(config, topics, List.of(ModelInfo.of(model)), metrics.registry());
            service.start();
            service.serveQueries(metrics);
            return service;
        });
    }

    public static void main(String[] args) {
        System.exit(ServiceProcess.main(args, Set.of(), (config, flags, out) -> process().run(config, out)));
    }
}
