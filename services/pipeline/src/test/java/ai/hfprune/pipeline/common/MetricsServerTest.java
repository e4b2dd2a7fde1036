package ai.hfprune.pipeline.common;

import ai.hfprune.engine.HfpruneException;
import org.junit.jupiter.api.Test;

import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Where the HTTP endpoints listen: this machine only unless a setting says otherwise. */
class MetricsServerTest {

    @Test
    void byDefaultItListensOnLoopbackOnly() throws Exception {
        try (MetricsServer server = MetricsServer.of(PipelineConfig.defaults())) {
            InetSocketAddress address = server.address().orElseThrow();
            assertTrue(address.getAddress().isLoopbackAddress(), "listens on " + address);
            String url = server.url("/metrics").orElseThrow();
            assertEquals("http://127.0.0.1:" + address.getPort() + "/metrics", url);
            HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode());
        }
    }

    @Test
    void containersListenOnEveryInterface() {
        PipelineConfig config = PipelineConfig.load(Map.of(), null, Map.of("HFPRUNE_METRICS_BIND_ADDRESS", "0.0.0.0"));
        try (MetricsServer server = MetricsServer.of(config)) {
            assertTrue(server.address().orElseThrow().getAddress().isAnyLocalAddress());
            assertTrue(server.url("/metrics").orElseThrow().startsWith("http://localhost:"));
        }
    }

    @Test
    void anAddressThatIsNoneIsRefusedBeforeListening() {
        PipelineConfig config = PipelineConfig.defaults().with("metrics.bind.address", "not an address");
        HfpruneException e = assertThrows(HfpruneException.class, () -> MetricsServer.of(config));
        assertTrue(e.getMessage().contains("setting metrics.bind.address: 'not an address'"), e.getMessage());
    }
}
