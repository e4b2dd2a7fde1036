package ai.hfprune.pipeline.serde;

import org.apache.avro.Schema;

/**
 * The part of a Confluent-compatible schema registry that the serdes use: register a schema under a subject
 * (returning its global id, the same id for the same schema), and look a schema up by id.
 */
public interface SchemaRegistry {

    int register(String subject, Schema schema);

    /** @throws UnknownSchemaException when no schema has this id */
    Schema byId(int id);

    /** Where {@code url} points: {@code mock://scope} (an in-memory registry shared within the JVM) or an HTTP registry. */
    static SchemaRegistry forUrl(String url) {
        if (url.startsWith(InMemorySchemaRegistry.SCHEME)) {
            return InMemorySchemaRegistry.scope(url.substring(InMemorySchemaRegistry.SCHEME.length()));
        }
        return new HttpSchemaRegistry(url);
    }

    final class UnknownSchemaException extends RuntimeException {
        public UnknownSchemaException(int id) {
            super("unknown schema id " + id);
        }
    }
}
