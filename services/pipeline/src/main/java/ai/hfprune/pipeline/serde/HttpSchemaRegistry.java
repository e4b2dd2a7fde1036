package ai.hfprune.pipeline.serde;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.avro.Schema;
import org.apache.kafka.common.errors.SerializationException;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A client of the Confluent schema registry REST API (also served by Apicurio's {@code /apis/ccompat/v7} and
 * Karapace): {@code POST /subjects/{subject}/versions} and {@code GET /schemas/ids/{id}}. Results are cached,
 * so each schema costs one request per process.
 */
public final class HttpSchemaRegistry implements SchemaRegistry {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";

    private final String baseUrl;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private final Map<String, Integer> registered = new ConcurrentHashMap<>();
    private final Map<Integer, Schema> byId = new ConcurrentHashMap<>();

    public HttpSchemaRegistry(String baseUrl) {
        this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
    }

    @Override
    public int register(String subject, Schema schema) {
        return registered.computeIfAbsent(subject + "\u0000" + schema, k -> {
            String body = JSON.createObjectNode().put("schema", schema.toString()).toString();
            JsonNode reply = send(HttpRequest.newBuilder(URI.create(baseUrl + "/subjects/"
                            + URLEncoder.encode(subject, StandardCharsets.UTF_8) + "/versions"))
                    .header("Content-Type", CONTENT_TYPE)
                    .POST(HttpRequest.BodyPublishers.ofString(body)), -1);
            int id = reply.path("id").asInt();
            byId.putIfAbsent(id, schema);
            return id;
        });
    }

    @Override
    public Schema byId(int id) {
        return byId.computeIfAbsent(id, i -> {
            JsonNode reply = send(HttpRequest.newBuilder(URI.create(baseUrl + "/schemas/ids/" + i)).GET(), i);
            return new Schema.Parser().parse(reply.path("schema").asText());
        });
    }

    private JsonNode send(HttpRequest.Builder request, int idForNotFound) {
        try {
            HttpResponse<String> response = http.send(request.timeout(Duration.ofSeconds(30)).build(),
                    HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() == 404 && idForNotFound >= 0) {
                throw new UnknownSchemaException(idForNotFound);
            }
            if (response.statusCode() / 100 != 2) {
                throw new SerializationException("schema registry " + baseUrl + " answered " + response.statusCode()
                        + ": " + response.body());
            }
            return JSON.readTree(response.body());
        } catch (IOException e) {
            throw new SerializationException("schema registry " + baseUrl + " unreachable: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SerializationException("interrupted while asking the schema registry", e);
        }
    }
}
