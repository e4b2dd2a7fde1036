package ai.hfprune.pipeline.common;

import ai.hfprune.engine.HfpruneException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
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
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;

/**
 * A process's meter registry and its HTTP server: {@code /metrics} in Prometheus' text format, the health of the
 * services {@link #watch watched} ({@code /health/live}, {@code /health/ready}, and {@code /health} as JSON), plus
 * whatever a service adds (the aggregator's interactive queries). One per JVM: in the embedded mode every service
 * shares it.
 *
 * <p>Liveness: 200 unless a watched service is FAILED (503). Readiness: 200 when every watched service is RUNNING (and
 * there is one), else 503. {@code /health} answers with the liveness code and every service's status and cause.
 */
public final class MetricsServer implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final HttpServer server;
    private final JvmGcMetrics gc = new JvmGcMetrics();
    private final List<PipelineService> watched = new CopyOnWriteArrayList<>();

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
        handle("/health/live", exchange -> respond(exchange, live() ? 200 : 503, "text/plain; charset=utf-8", live() ? "live\n" : "failed\n"));
        handle("/health/ready", exchange -> respond(exchange, ready() ? 200 : 503, "text/plain; charset=utf-8", ready() ? "ready\n" : "not ready\n"));
        handle("/health", exchange -> respond(exchange, live() ? 200 : 503, "application/json", healthJson()));
        server.start();
    }

    /** Adds a service to those whose health {@code /health} reports. */
    public void watch(PipelineService service) {
        watched.add(service);
    }

    /** No watched service has failed. */
    public boolean live() {
        return watched.stream().allMatch(s -> s.health().live());
    }

    /** Every watched service runs (and there is one). */
    public boolean ready() {
        return !watched.isEmpty() && watched.stream().allMatch(s -> s.health().ready());
    }

    private String healthJson() {
        ObjectNode root = JSON.createObjectNode().put("live", live()).put("ready", ready());
        ArrayNode services = root.putArray("services");
        for (PipelineService s : watched) {
            PipelineService.Health h = s.health();
            ObjectNode node = services.addObject().put("name", h.service()).put("status", h.status().name());
            h.failure().ifPresent(cause -> node.put("cause", cause.toString()));
        }
        return root.toPrettyString();
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
