package ai.hfprune.pipeline.serde;

import ai.hfprune.pipeline.common.MetricsServer;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.TokenBatch;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.avro.Schema;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The registry served over HTTP, checked with the HTTP client the services use ({@link HttpSchemaRegistry}) and with
 * raw requests for the parts of Confluent's API that client does not call; and the journal that makes ids survive a
 * restart.
 */
class SchemaRegistryHttpTest {

    private static final String SCOPE = "schema-registry-http-test";
    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpClient http = HttpClient.newHttpClient();

    @AfterEach
    void dropScope() {
        InMemorySchemaRegistry.drop(SCOPE);
    }

    private static MetricsServer serve(InMemorySchemaRegistry registry) {
        MetricsServer server = new MetricsServer(InetAddress.getLoopbackAddress(), 0);
        SchemaRegistryHttp.serve(registry, server::handle);
        return server;
    }

    /** A serde in another process (HTTP) and one in this JVM (mock://) see the same ids, both ways. */
    @Test
    void theHttpClientAndTheInMemoryScopeShareIds() {
        InMemorySchemaRegistry local = InMemorySchemaRegistry.scope(SCOPE);
        try (MetricsServer server = serve(local)) {
            HttpSchemaRegistry remote = new HttpSchemaRegistry(server.url("").orElseThrow());
            int batchId = local.register("batches-value", TokenBatch.getClassSchema());
            int modelId = remote.register("models-value", ModelId.getClassSchema());
            assertEquals(2, modelId, "ids are global and count on from the in-memory registrations");
            assertEquals(modelId, local.register("models-value", ModelId.getClassSchema()));
            assertEquals(batchId, remote.register("batches-value", TokenBatch.getClassSchema()));
            assertEquals(TokenBatch.getClassSchema(), new HttpSchemaRegistry(server.url("").orElseThrow()).byId(batchId));

            AvroSerde<ModelId> writer = new AvroSerde<>(ModelId.class, local);
            AvroSerde<ModelId> reader = new AvroSerde<>(ModelId.class, new HttpSchemaRegistry(server.url("").orElseThrow()));
            assertEquals(new ModelId("m", "ab"), reader.deserialize("models", writer.serialize("models", new ModelId("m", "ab"))));

            assertThrows(SchemaRegistry.UnknownSchemaException.class, () -> remote.byId(99));
        }
    }

    @Test
    void subjectsVersionsAndErrorsAnswerAsConfluentsDo() throws Exception {
        InMemorySchemaRegistry local = InMemorySchemaRegistry.scope(SCOPE);
        local.register("a-value", ModelId.getClassSchema());
        local.register("a-value", TokenBatch.getClassSchema());
        try (MetricsServer server = serve(local)) {
            String base = server.url("").orElseThrow();
            assertEquals("[\"a-value\"]", get(base + "/subjects").body());
            assertEquals("[1,2]", get(base + "/subjects/a-value/versions").body());
            JsonNode latest = JSON.readTree(get(base + "/subjects/a-value/versions/latest").body());
            assertEquals(2, latest.path("version").asInt());
            assertEquals(2, latest.path("id").asInt());
            assertEquals(TokenBatch.getClassSchema(), new Schema.Parser().parse(latest.path("schema").asText()));

            assertError(get(base + "/subjects/none/versions"), 404, 40401);
            assertError(get(base + "/subjects/a-value/versions/3"), 404, 40402);
            assertError(get(base + "/schemas/ids/7"), 404, 40403);
            assertError(post(base + "/subjects/b-value/versions", "{\"schema\": \"{\\\"type\\\": \\\"nope\\\"}\"}"), 422, 42201);
            assertError(post(base + "/subjects/b-value/versions", "{\"schema\": \"\\\"int\\\"\", \"schemaType\": \"JSON\"}"), 422, 42201);
            assertError(post(base + "/subjects/b-value/versions", "not json"), 422, 42201);
            assertEquals(1, JSON.readTree(post(base + "/subjects/b-value/versions",
                    JSON.createObjectNode().put("schema", ModelId.getClassSchema().toString()).toString()).body()).path("id").asInt());
        }
    }

    /** A restarted registry replays its journal: the same ids for the same schemas, and new ones count on. */
    @Test
    void aJournalKeepsTheIdsAcrossARestart(@TempDir Path dir) throws Exception {
        Path journal = dir.resolve("journal");
        InMemorySchemaRegistry first = InMemorySchemaRegistry.persistent(journal);
        assertEquals(1, first.register("batches-value", TokenBatch.getClassSchema()));
        assertEquals(2, first.register("models-value", ModelId.getClassSchema()));
        assertEquals(2, first.register("models-value", ModelId.getClassSchema()));
        first.closeJournal();
        assertEquals(2, Files.readAllLines(journal).size(), "one line per new subject version, nothing for a repeat");

        InMemorySchemaRegistry second = InMemorySchemaRegistry.persistent(journal);
        assertEquals(TokenBatch.getClassSchema(), second.byId(1));
        assertEquals(ModelId.getClassSchema(), second.byId(2));
        assertEquals(2, second.register("models-value", ModelId.getClassSchema()));
        assertEquals(2, second.register("other-value", ModelId.getClassSchema()));
        second.closeJournal();
        assertEquals(3, Files.readAllLines(journal).size());

        Files.writeString(journal, "garbage without a tab\n");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> InMemorySchemaRegistry.persistent(journal));
        assertTrue(e.getMessage().contains("line 1"), e.getMessage());
    }

    private HttpResponse<String> get(String url) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(String url, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static void assertError(HttpResponse<String> response, int status, int code) throws Exception {
        assertEquals(status, response.statusCode(), response.body());
        assertEquals(code, JSON.readTree(response.body()).path("error_code").asInt(), response.body());
    }
}
