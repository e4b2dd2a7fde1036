package ai.hfprune.pipeline.testing;

import ai.hfprune.pipeline.common.MetricsServer;
import ai.hfprune.pipeline.embedded.EmbeddedKafka;
import ai.hfprune.pipeline.serde.InMemorySchemaRegistry;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import org.apache.avro.Schema;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;

/**
 * For measuring recovery with the services as separate processes (README, "Fast recovery"): the in-process KRaft
 * broker with an in-memory schema registry served over HTTP (the two calls {@code HttpSchemaRegistry} makes), in a
 * process of their own. {@code java -cp … ai.hfprune.pipeline.testing.LocalCluster PORT} prints the bootstrap servers
 * and the registry URL and runs until killed. (A stand-in for item 6's {@code ./hfprune broker}.)
 */
public final class LocalCluster {

    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 0;
        EmbeddedKafka kafka = EmbeddedKafka.start();
        InMemorySchemaRegistry registry = InMemorySchemaRegistry.scope("local-cluster");
        ObjectMapper json = new ObjectMapper();
        HttpServer http = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 0);
        http.createContext("/subjects/", exchange -> {
            String path = exchange.getRequestURI().getRawPath(); // /subjects/{subject}/versions
            String subject = URLDecoder.decode(path.substring("/subjects/".length(), path.lastIndexOf("/versions")), StandardCharsets.UTF_8);
            String schema = json.readTree(exchange.getRequestBody()).path("schema").asText();
            int id = registry.register(subject, new Schema.Parser().parse(schema));
            MetricsServer.respond(exchange, 200, "application/json", "{\"id\":" + id + "}");
        });
        http.createContext("/schemas/ids/", exchange -> {
            int id = Integer.parseInt(exchange.getRequestURI().getPath().substring("/schemas/ids/".length()));
            Schema schema;
            try {
                schema = registry.byId(id);
            } catch (RuntimeException e) {
                schema = null;
            }
            if (schema == null) {
                MetricsServer.respond(exchange, 404, "application/json", "{\"error_code\":40403}");
                return;
            }
            MetricsServer.respond(exchange, 200, "application/json", json.createObjectNode().put("schema", schema.toString()).toString());
        });
        http.start();
        System.out.println("bootstrap " + kafka.bootstrapServers());
        System.out.println("registry http://127.0.0.1:" + http.getAddress().getPort());
        System.out.flush();
        Thread.currentThread().join();
    }
}
