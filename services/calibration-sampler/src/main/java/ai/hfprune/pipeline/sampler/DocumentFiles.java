package ai.hfprune.pipeline.sampler;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.io.TextFiles;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * The sampler's document files: {@code .txt} split at {@code <|endoftext|>} lines exactly as
 * {@link CalibrationData#splitDocuments} (so {@code hfprune score} sees the same documents), and {@code .jsonl}
 * with one JSON object per line whose text field is one document. Folders are read recursively, files in path order.
 */
public final class DocumentFiles {

    private static final Logger LOG = LoggerFactory.getLogger(DocumentFiles.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private DocumentFiles() {
    }

    /** The {@code data} setting (a comma list of files and folders) as paths; empty: none. */
    public static List<Path> parse(String commaList) {
        List<Path> out = new ArrayList<>();
        if (commaList != null) {
            for (String part : commaList.split(",")) {
                if (!part.isBlank()) {
                    out.add(Path.of(part.strip()));
                }
            }
        }
        return out;
    }

    /** Files and folders to the document files in them, in order: folders contribute their .txt and .jsonl files, sorted by path. */
    public static List<Path> expand(List<Path> paths) {
        List<Path> files = new ArrayList<>();
        for (Path p : paths) {
            if (Files.isDirectory(p)) {
                try (Stream<Path> walk = Files.walk(p)) {
                    walk.filter(Files::isRegularFile).filter(DocumentFiles::supported).sorted().forEach(files::add);
                } catch (IOException | UncheckedIOException e) {
                    throw new HfpruneException("cannot list data folder " + p + ": " + e.getMessage(), e);
                }
            } else if (Files.isRegularFile(p)) {
                if (!supported(p)) {
                    throw new HfpruneException("data file " + p + " is neither .txt nor .jsonl");
                }
                files.add(p);
            } else {
                throw new HfpruneException("data file " + p + " does not exist");
            }
        }
        return files;
    }

    static boolean supported(Path p) {
        String name = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return name.endsWith(".txt") || name.endsWith(".jsonl");
    }

    /**
     * Hands each document of {@code file} to {@code sink} until it returns false.
     *
     * @param jsonlField the text field of {@code .jsonl} lines; lines without it (or with a non-text value) are skipped
     * @return documents handed over
     */
    public static long forEachDocument(Path file, String jsonlField, Predicate<String> sink) {
        if (file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".jsonl")) {
            return jsonl(file, jsonlField, sink);
        }
        long n = 0;
        for (String doc : CalibrationData.splitDocuments(TextFiles.readUtf8(file, "data file"))) {
            n++;
            if (!sink.test(doc)) {
                break;
            }
        }
        return n;
    }

    private static long jsonl(Path file, String field, Predicate<String> sink) {
        long[] documents = {0};
        long[] skipped = {0};
        TextFiles.forEachLine(file, "data file", (line, lineNo) -> {
            if (line.isBlank()) {
                return true;
            }
            JsonNode node;
            try {
                node = JSON.readTree(line);
            } catch (JsonProcessingException e) {
                throw new HfpruneException(file + " line " + lineNo + " is not JSON: " + e.getOriginalMessage(), e);
            }
            JsonNode text = node == null ? null : node.get(field);
            if (text == null || !text.isTextual()) {
                skipped[0]++;
                return true;
            }
            documents[0]++;
            return sink.test(text.asText());
        });
        if (skipped[0] > 0) {
            LOG.warn("{}: skipped {} lines without a text field '{}'", file, skipped[0], field);
        }
        return documents[0];
    }
}
