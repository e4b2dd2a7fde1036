package ai.hfprune.pipeline.serde;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import org.apache.avro.Schema;
import org.apache.avro.SchemaParseException;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.BiConsumer;

/**
 * Serves an {@link InMemorySchemaRegistry} over the subset of the Confluent schema registry REST API that
 * Confluent-wire-format serdes use (ours, {@link HttpSchemaRegistry}, and Confluent's own), as Redpanda serves one
 * beside its broker:
 * <ul>
 *   <li>{@code POST /subjects/{subject}/versions} with {@code {"schema": "…"}} → {@code {"id": N}};</li>
 *   <li>{@code GET /schemas/ids/{id}} → {@code {"schema": "…"}};</li>
 *   <li>{@code GET /subjects} → the subjects; {@code GET /subjects/{subject}/versions} → {@code [1, 2, …]};
 *       {@code GET /subjects/{subject}/versions/{version|latest}} → subject, version, id and schema.</li>
 * </ul>
 * Errors answer as Confluent's do: a status and {@code {"error_code": …, "message": …}} (40401 subject not found,
 * 40402 version not found, 40403 schema not found, 42201 invalid schema). Only Avro schemas are accepted.
 */
public final class SchemaRegistryHttp {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";

    private final InMemorySchemaRegistry registry;

    private SchemaRegistryHttp(InMemorySchemaRegistry registry) {
        this.registry = registry;
    }

    /** Adds the registry's routes to an HTTP server, e.g. {@code serve(registry, metricsServer::handle)}. */
    public static void serve(InMemorySchemaRegistry registry, BiConsumer<String, HttpHandler> routes) {
        SchemaRegistryHttp http = new SchemaRegistryHttp(registry);
        routes.accept("/subjects", http::handleSafely);
        routes.accept("/schemas", http::handleSafely);
    }

    private void handleSafely(HttpExchange exchange) throws IOException {
        try {
            Reply reply;
            try {
                reply = handle(exchange.getRequestMethod(), exchange.getRequestURI().getRawPath(), exchange.getRequestBody());
            } catch (JsonProcessingException e) {
                reply = error(422, 42201, "the request is not JSON: " + e.getOriginalMessage());
            } catch (RuntimeException e) {
                reply = error(500, 50001, "error in the schema registry: " + e);
            }
            byte[] bytes = JSON.writeValueAsBytes(reply.body);
            exchange.getResponseHeaders().set("Content-Type", CONTENT_TYPE);
            exchange.sendResponseHeaders(reply.status, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        } finally {
            exchange.close();
        }
    }

    private record Reply(int status, JsonNode body) {
    }

    private Reply handle(String method, String rawPath, InputStream body) throws IOException {
        String[] parts = rawPath.replaceAll("/+$", "").substring(1).split("/");
        for (int i = 0; i < parts.length; i++) {
            parts[i] = URLDecoder.decode(parts[i], StandardCharsets.UTF_8);
        }
        if (parts[0].equals("schemas") && parts.length == 3 && parts[1].equals("ids") && method.equals("GET")) {
            Integer id = parseInt(parts[2]);
            try {
                return id == null ? error(404, 40403, "Schema " + parts[2] + " not found")
                        : ok(JSON.createObjectNode().put("schema", registry.byId(id).toString()));
            } catch (SchemaRegistry.UnknownSchemaException e) {
                return error(404, 40403, "Schema " + id + " not found");
            }
        }
        if (parts[0].equals("subjects") && parts.length == 1 && method.equals("GET")) {
            ArrayNode subjects = JSON.createArrayNode();
            registry.subjects().stream().sorted().forEach(subjects::add);
            return ok(subjects);
        }
        if (parts[0].equals("subjects") && parts.length >= 3 && parts[2].equals("versions")) {
            String subject = parts[1];
            if (parts.length == 3 && method.equals("POST")) {
                return register(subject, JSON.readTree(body));
            }
            List<Integer> versions = registry.versions(subject);
            if (versions.isEmpty() && method.equals("GET")) {
                return error(404, 40401, "Subject '" + subject + "' not found.");
            }
            if (parts.length == 3 && method.equals("GET")) {
                ArrayNode numbers = JSON.createArrayNode();
                for (int v = 1; v <= versions.size(); v++) {
                    numbers.add(v);
                }
                return ok(numbers);
            }
            if (parts.length == 4 && method.equals("GET")) {
                Integer version = parts[3].equals("latest") ? Integer.valueOf(versions.size()) : parseInt(parts[3]);
                if (version == null || version < 1 || version > versions.size()) {
                    return error(404, 40402, "Version " + parts[3] + " not found.");
                }
                int id = versions.get(version - 1);
                ObjectNode reply = JSON.createObjectNode().put("subject", subject).put("version", version).put("id", id)
                        .put("schema", registry.byId(id).toString());
                return ok(reply);
            }
        }
        return error(404, 404, "no such resource in this registry: " + method + " " + rawPath);
    }

    private Reply register(String subject, JsonNode request) {
        String type = request.path("schemaType").asText("AVRO");
        if (!type.equals("AVRO")) {
            return error(422, 42201, "only Avro schemas are served here, not " + type);
        }
        if (!request.path("schema").isTextual()) {
            return error(422, 42201, "the request has no \"schema\" string");
        }
        Schema schema;
        try {
            schema = new Schema.Parser().parse(request.path("schema").asText());
        } catch (SchemaParseException | NullPointerException e) { // Avro 1.12 answers an unknown type name with an NPE
            return error(422, 42201, "Invalid schema: " + e.getMessage());
        }
        try {
            return ok(JSON.createObjectNode().put("id", registry.register(subject, schema)));
        } catch (IllegalArgumentException e) {
            return error(422, 42201, e.getMessage());
        }
    }

    private static Integer parseInt(String text) {
        try {
            return Integer.valueOf(text);
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static Reply ok(JsonNode body) {
        return new Reply(200, body);
    }

    private static Reply error(int status, int code, String message) {
        return new Reply(status, JSON.createObjectNode().put("error_code", code).put("message", message));
    }
}
