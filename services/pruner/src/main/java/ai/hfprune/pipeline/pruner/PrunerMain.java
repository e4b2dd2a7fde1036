package ai.hfprune.pipeline.pruner;

import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.pipeline.common.ServiceProcess;

import java.util.Set;

/** The pruner's process, in its image and as {@code hfprune pruner}. */
public final class PrunerMain {
    private PrunerMain() {
    }

    public static ServiceProcess<Checkpoint> process() {
        return new ServiceProcess<>("pruner", Checkpoint::open, true, (config, topics, model, metrics) -> {
            PrunerService service = new PrunerService(config, topics, model, metrics.registry(), System.out::println);
            service.start();
            return service;
        });
    }

    public static void main(String[] args) {
        System.exit(ServiceProcess.main(args, Set.of(), (config, flags, out) -> process().run(config, out)));
    }
}
