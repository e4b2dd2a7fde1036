package ai.hfprune.pipeline.scorer;

import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.pipeline.common.ServiceProcess;

import java.util.Set;

/** A scorer's process, in its image and as {@code hfprune scorer} (run as many as you like). */
public final class ScorerMain {
    private ScorerMain() {
    }

    public static ServiceProcess<Checkpoint> process() {
        return new ServiceProcess<>("scorer", Checkpoint::open, true, (config, topics, model, metrics) -> {
            ScorerService service = new ScorerService(config, topics, model, metrics.registry());
            service.start();
            return service;
        });
    }

    public static void main(String[] args) {
        System.exit(ServiceProcess.main(args, Set.of(), (config, flags, out) -> process().run(config, out)));
    }
}
