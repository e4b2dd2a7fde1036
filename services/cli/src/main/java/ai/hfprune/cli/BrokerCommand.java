package ai.hfprune.cli;

import ai.hfprune.pipeline.embedded.LocalCluster;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

@Command(name = "broker", mixinStandardHelpOptions = true,
        description = "A local cluster for the services as separate processes: the embedded single-node KRaft broker and a "
                + "Confluent-compatible schema registry over HTTP, both on 127.0.0.1, until stopped (SIGTERM/Ctrl-C).")
public class BrokerCommand implements Callable<Integer> {

    @Option(names = "--port", defaultValue = "9092", description = "The broker's client port (default: ${DEFAULT-VALUE}; 0: any free port).")
    int port;

    @Option(names = "--registry-port", defaultValue = "8081",
            description = "The schema registry's HTTP port, also serving the broker process's /metrics (default: ${DEFAULT-VALUE}).")
    int registryPort;

    @Option(names = "--data-dir", paramLabel = "DIR",
            description = "Keep the broker's logs and the registry's schemas here, so that a restart (after a kill -9 too) "
                    + "finds its topics, offsets and schema ids again (default: a temporary folder, deleted on exit).")
    Path dataDir;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws InterruptedException {
        PrintWriter out = spec.commandLine().getOut();
        LocalCluster cluster = LocalCluster.start(dataDir, port, registryPort);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            cluster.close();
            stopped.countDown();
        }, "hfprune-broker-stop"));
        out.printf("broker %s (single-node KRaft; data in %s%s)%n", cluster.bootstrapServers(), cluster.dataDirectory(),
                cluster.isTemporary() ? ", deleted on exit" : "");
        out.printf("schema registry %s (and /metrics)%n", cluster.registryUrl());
        out.printf("for the services: export HFPRUNE_BOOTSTRAP_SERVERS=%s HFPRUNE_SCHEMA_REGISTRY_URL=%s%n",
                cluster.bootstrapServers(), cluster.registryUrl());
        out.flush();
        stopped.await();
        return 0;
    }
}
