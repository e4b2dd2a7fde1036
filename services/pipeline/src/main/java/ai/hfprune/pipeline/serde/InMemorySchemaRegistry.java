package ai.hfprune.pipeline.serde;

import org.apache.avro.Schema;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A schema registry in memory, for the embedded mode and tests, like Confluent's {@code mock://scope}:
 * every serde of the JVM that names the same scope shares one registry. Ids start at 1.
 *
 * <p>{@link #persistent} keeps a journal of the registrations (one line per new subject version: the subject, a tab,
 * the schema's JSON), replayed in order on the next start, so the ids of a restarted {@code hfprune broker} are the
 * ids its topics' records carry. {@link SchemaRegistryHttp} serves a registry over Confluent's REST API.
 */
public final class InMemorySchemaRegistry implements SchemaRegistry {

    public static final String SCHEME = "mock://";
    private static final Map<String, InMemorySchemaRegistry> SCOPES = new ConcurrentHashMap<>();

    private final List<Schema> schemas = new ArrayList<>();
    private final Map<Schema, Integer> ids = new HashMap<>();
    private final Map<String, List<Integer>> subjects = new HashMap<>();
    /** Where new registrations are appended, or null (a registry of this JVM's life only). */
    private BufferedWriter journal;

    public static InMemorySchemaRegistry scope(String name) {
        return SCOPES.computeIfAbsent(name, n -> new InMemorySchemaRegistry());
    }

    /** Forgets a scope (tests use a fresh one each). */
    public static void drop(String name) {
        SCOPES.remove(name);
    }

    /**
     * A registry that replays {@code journal} (if it exists) and appends every new registration to it, each forced
     * to disk before {@link #register} returns, so that no record can carry an id a restart would forget.
     */
    public static InMemorySchemaRegistry persistent(Path journal) {
        InMemorySchemaRegistry registry = new InMemorySchemaRegistry();
        try {
            if (Files.exists(journal)) {
                int lineNumber = 0;
                for (String line : Files.readAllLines(journal, StandardCharsets.UTF_8)) {
                    lineNumber++;
                    int tab = line.indexOf('\t');
                    if (line.isBlank()) {
                        continue;
                    }
                    if (tab <= 0) {
                        throw new IllegalStateException(journal + " line " + lineNumber + " is not 'subject<TAB>schema'");
                    }
                    registry.register(line.substring(0, tab), new Schema.Parser().parse(line.substring(tab + 1)));
                }
            }
            registry.journal = Files.newBufferedWriter(journal, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND, StandardOpenOption.DSYNC);
            return registry;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open the schema registry's journal " + journal + ": " + e.getMessage(), e);
        }
    }

    @Override
    public synchronized int register(String subject, Schema schema) {
        if (subject.isEmpty() || subject.indexOf('\t') >= 0 || subject.indexOf('\n') >= 0) {
            throw new IllegalArgumentException("a subject must be non-empty, without tabs or line breaks: '" + subject + "'");
        }
        Integer id = ids.get(schema);
        if (id == null) {
            schemas.add(schema);
            id = schemas.size();
            ids.put(schema, id);
        }
        List<Integer> versions = subjects.computeIfAbsent(subject, s -> new ArrayList<>());
        if (!versions.contains(id)) {
            versions.add(id);
            if (journal != null) {
                try {
                    journal.write(subject + "\t" + schema.toString(false) + "\n");
                    journal.flush();
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot write the schema registry's journal: " + e.getMessage(), e);
                }
            }
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

    /** The ids of the schemas registered under {@code subject}, oldest first (version k is element k − 1). */
    public synchronized List<Integer> versions(String subject) {
        return List.copyOf(subjects.getOrDefault(subject, List.of()));
    }

    /** Closes the journal of a {@link #persistent} registry; later registrations fail. */
    public synchronized void closeJournal() {
        if (journal != null) {
            try {
                journal.close();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot close the schema registry's journal: " + e.getMessage(), e);
            }
        }
    }

    /** The subjects, in no particular order. */
    public synchronized List<String> subjects() {
        return List.copyOf(subjects.keySet());
    }
}
