package ai.hfprune.pipeline.common;

import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The health state of {@link ServiceBase} and how {@code /health} beside {@code /metrics} answers it. */
class ServiceHealthEndpointTest {

    /** A service whose worker is whatever the test says. */
    static final class Puppet extends ServiceBase {
        @Override
        public String name() {
            return "puppet";
        }

        @Override
        public void start() {
            running();
        }

        @Override
        public boolean stop(Duration timeout) {
            stopped();
            return true;
        }

        void die(Throwable cause) {
            failed(cause);
        }
    }

    @Test
    void startingThenRunningThenFailedWithTheFirstCauseOnly() throws Exception {
        Puppet s = new Puppet();
        assertEquals(PipelineService.Status.STARTING, s.health().status());
        assertFalse(s.awaitEnd(Duration.ZERO));
        s.start();
        assertEquals(PipelineService.Status.RUNNING, s.health().status());
        IllegalStateException first = new IllegalStateException("the first");
        s.die(first);
        s.die(new IllegalStateException("a consequence"));
        s.stop(Duration.ZERO); // a stop after a failure keeps the failure
        assertEquals(PipelineService.Status.FAILED, s.health().status());
        assertSame(first, s.health().cause());
        assertTrue(s.awaitEnd(Duration.ZERO));
    }

    @Test
    void healthAnswers200WhileRunningAnd503OnceFailed() throws Exception {
        Puppet s = new Puppet();
        try (MetricsServer server = MetricsServer.of(PipelineConfig.defaults())) {
            server.watch(s);
            assertEquals(200, get(server, "/health/live").statusCode(), "starting is alive");
            assertEquals(503, get(server, "/health/ready").statusCode(), "starting is not ready");
            s.start();
            assertEquals(200, get(server, "/health/ready").statusCode());
            assertEquals(200, get(server, "/health").statusCode());
            assertEquals(200, get(server, "/metrics").statusCode());
            s.die(new IllegalStateException("fenced by a twin"));
            assertEquals(503, get(server, "/health/live").statusCode());
            assertEquals(503, get(server, "/health/ready").statusCode());
            HttpResponse<String> json = get(server, "/health");
            assertEquals(503, json.statusCode());
            assertTrue(json.body().contains("\"status\" : \"FAILED\"") && json.body().contains("fenced by a twin"), json.body());
            assertEquals(200, get(server, "/metrics").statusCode(), "metrics still answer");
        }
    }

    @Test
    void aServerWithoutServicesIsAliveButNotReady() throws Exception {
        try (MetricsServer server = MetricsServer.of(PipelineConfig.defaults())) {
            assertEquals(200, get(server, "/health/live").statusCode());
            assertEquals(503, get(server, "/health/ready").statusCode());
        }
    }

    static HttpResponse<String> get(MetricsServer server, String path) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(server.url(path).orElseThrow())).build(),
                HttpResponse.BodyHandlers.ofString());
    }
}
