package ai.hfprune.pipeline.serde;

import org.apache.avro.Schema;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A schema registry in memory, for the embedded mode and tests, like Confluent's {@code mock://scope}:
 * every serde of the JVM that names the same scope shares one registry. Ids start at 1.
 */
public final class InMemorySchemaRegistry implements SchemaRegistry {

    public static final String SCHEME = "mock://";
    private static final Map<String, InMemorySchemaRegistry> SCOPES = new ConcurrentHashMap<>();

    private final List<Schema> schemas = new ArrayList<>();
    private final Map<Schema, Integer> ids = new HashMap<>();
    private final Map<String, List<Integer>> subjects = new HashMap<>();

    public static InMemorySchemaRegistry scope(String name) {
        return SCOPES.computeIfAbsent(name, n -> new InMemorySchemaRegistry());
    }

    /** Forgets a scope (tests use a fresh one each). */
    public static void drop(String name) {
        SCOPES.remove(name);
    }

    @Override
    public synchronized int register(String subject, Schema schema) {
        Integer id = ids.get(schema);
        if (id == null) {
            schemas.add(schema);
            id = schemas.size();
            ids.put(schema, id);
        }
        List<Integer> versions = subjects.computeIfAbsent(subject, s -> new ArrayList<>());
        if (!versions.contains(id)) {
            versions.add(id);
        }
        return id;
    }

    @Override
    public synchronized Schema byId(int id) {
        if (id < 1 || id > schemas.size()) {
            throw new UnknownSchemaException(id);
        }
        return schemas.get(id - 1);
    }

    public synchronized List<Integer> versions(String subject) {
        return List.copyOf(subjects.getOrDefault(subject, List.of()));
    }
}
