package ai.hfprune.pipeline.common;

import ai.hfprune.engine.HfpruneException;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.Executors;

/**
 * A process's meter registry and its HTTP server: {@code /metrics} in Prometheus' text format, plus whatever a
 * service adds (the aggregator's interactive queries). One per JVM: in the embedded mode every service shares it.
 */
public final class MetricsServer implements AutoCloseable {

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final HttpServer server;
    private final JvmGcMetrics gc = new JvmGcMetrics();

    /** The server of {@code metrics.port} on {@code metrics.bind.address}. */
    public static MetricsServer of(PipelineConfig config) {
        return new MetricsServer(config.metricsBindAddress(), config.getInt("metrics.port"));
    }

    /**
     * @param bindAddress the interface to listen on (loopback: this machine only; the wildcard address: every interface)
     * @param port        0: an ephemeral port; -1: no HTTP server (the registry still works)
     */
    public MetricsServer(InetAddress bindAddress, int port) {
        new JvmMemoryMetrics().bindTo(registry);
        gc.bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
        if (port < 0) {
            server = null;
            return;
        }
        try {
            server = HttpServer.create(new InetSocketAddress(bindAddress, port), 0);
        } catch (IOException e) {
            throw new HfpruneException("cannot serve /metrics on " + bindAddress.getHostAddress() + " port " + port + ": "
                    + e.getMessage(), e);
        }
        server.setExecutor(Executors.newFixedThreadPool(2, r -> {
            Thread t = new Thread(r, "hfprune-http");
            t.setDaemon(true);
            return t;
        }));
        handle("/metrics", exchange -> respond(exchange, 200, "text/plain; version=0.0.4; charset=utf-8", registry.scrape()));
        server.start();
    }

    public PrometheusMeterRegistry registry() {
        return registry;
    }

    /** The port the server listens on, or -1 without a server. */
    public int port() {
        return server == null ? -1 : server.getAddress().getPort();
    }

    /** The address the server listens on, or empty without a server. */
    public Optional<InetSocketAddress> address() {
        return server == null ? Optional.empty() : Optional.of(server.getAddress());
    }

    /** Where to reach {@code path} from this machine, e.g. {@code http://127.0.0.1:9404/metrics}; empty without a server. */
    public Optional<String> url(String path) {
        return address().map(a -> {
            InetAddress ip = a.getAddress();
            String host = ip.isAnyLocalAddress() ? "localhost"
                    : ip instanceof java.net.Inet6Address ? "[" + ip.getHostAddress() + "]" : ip.getHostAddress();
            return "http://" + host + ":" + a.getPort() + path;
        });
    }

    public void handle(String path, HttpHandler handler) {
        if (server != null) {
            server.createContext(path, handler);
        }
    }

    public static void respond(HttpExchange exchange, int status, String contentType, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", contentType);
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    @Override
    public void close() {
        if (server != null) {
            server.stop(0);
            ((java.util.concurrent.ExecutorService) server.getExecutor()).shutdownNow();
        }
        gc.close();
        registry.close();
    }
}
