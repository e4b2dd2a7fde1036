package ai.hfprune.engine.eval;

import ai.hfprune.engine.HfpruneException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Reads a zero-shot task file (the formats of the assets' {@code data/zeroshot}) into questions, with the
 * prompt layout of lm-evaluation-harness:
 * <ul>
 *   <li>{@code .jsonl} rows {@code {query, choices, gold}}: context = query without trailing whitespace. ARC,
 *       PIQA and BoolQ prompts end in {@code "\nAnswer:"} in the harness and the files' queries do not carry
 *       it, so their delimiter is {@code "\nAnswer: "}; other tasks (OpenBookQA) use the harness' plain
 *       {@code " "}. No file's choices start with a space, so the delimiter supplies it.</li>
 *   <li>{@code .jsonl} rows {@code {context_options, continuation, gold}} (WinoGrande, partial scoring): one
 *       choice per option, context = the option, target = the shared continuation, delimiter {@code " "}.</li>
 *   <li>{@code .txt} in llama.cpp's HellaSwag layout, 6 lines per item: context, gold label 0-3, four endings
 *       (already preprocessed: no {@code [title]} markers); delimiter {@code " "}.</li>
 * </ul>
 * The task is named after the file without its extension and a trailing {@code _val}
 * ({@code hellaswag_val.txt} is {@code hellaswag}).
 */
public final class TaskFiles {

    /** Tasks whose harness prompt ends in "\nAnswer:" (arc_easy/arc_challenge, piqa, boolq). */
    private static final Set<String> ANSWER_PROMPT = Set.of("arc_easy", "arc_challenge", "piqa", "boolq");
    private static final String ANSWER_DELIMITER = "\nAnswer: ";
    private static final String SPACE = " ";
    private static final int HELLASWAG_LINES = 6;
    private static final ObjectMapper JSON = new ObjectMapper();

    private TaskFiles() {
    }

    public static boolean isTaskFile(Path file) {
        String n = file.getFileName().toString();
        return Files.isRegularFile(file) && (n.endsWith(".jsonl") || n.endsWith(".txt"));
    }

    public static String taskName(Path file) {
        String n = file.getFileName().toString();
        n = n.substring(0, n.lastIndexOf('.') < 0 ? n.length() : n.lastIndexOf('.'));
        return n.endsWith("_val") ? n.substring(0, n.length() - 4) : n;
    }

    public static ZeroShotTask read(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new HfpruneException("task file " + file + " does not exist");
        }
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new HfpruneException("cannot read task file " + file + ": " + e.getMessage(), e);
        }
        String name = taskName(file);
        ZeroShotTask task;
        if (file.getFileName().toString().endsWith(".jsonl")) {
            task = jsonl(name, file, lines);
        } else if (file.getFileName().toString().endsWith(".txt")) {
            task = new ZeroShotTask(name, file, SPACE, hellaswag(file, lines));
        } else {
            throw new HfpruneException("task file " + file + " must be .jsonl ({query, choices, gold} or "
                    + "{context_options, continuation, gold} per line) or .txt (HellaSwag, 6 lines per item)");
        }
        if (task.questions().isEmpty()) {
            throw new HfpruneException("task file " + file + " holds no items");
        }
        return task;
    }

    /** One JSON object per non-blank line; the first row decides between the two schemas. */
    private static ZeroShotTask jsonl(String name, Path file, List<String> lines) {
        List<Question> questions = new ArrayList<>();
        Boolean partial = null;
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) {
                continue;
            }
            String where = file + ":" + (i + 1);
            JsonNode row = parseJson(where, lines.get(i));
            if (partial == null) {
                partial = row.has("context_options");
            }
            questions.add(partial ? winogrande(where, row) : queryChoices(where, row));
        }
        String delimiter = Boolean.FALSE.equals(partial) && ANSWER_PROMPT.contains(name) ? ANSWER_DELIMITER : SPACE;
        return new ZeroShotTask(name, file, delimiter, questions);
    }

    private static JsonNode parseJson(String where, String line) {
        try {
            JsonNode row = JSON.readTree(line);
            if (row == null || !row.isObject()) {
                throw new HfpruneException(where + ": expected a JSON object per line");
            }
            return row;
        } catch (JsonProcessingException e) {
            throw new HfpruneException(where + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    private static Question queryChoices(String where, JsonNode row) {
        String query = text(where, row, "query", "{query, choices, gold}").stripTrailing();
        List<String> choices = texts(where, row, "choices", "{query, choices, gold}");
        List<Choice> out = new ArrayList<>();
        for (String choice : choices) {
            out.add(new Choice(query, choice));
        }
        return new Question(out, gold(where, row, choices.size()));
    }

    private static Question winogrande(String where, JsonNode row) {
        String schema = "{context_options, continuation, gold}";
        List<String> options = texts(where, row, "context_options", schema);
        String continuation = text(where, row, "continuation", schema);
        List<Choice> out = new ArrayList<>();
        for (String option : options) {
            out.add(new Choice(option.stripTrailing(), continuation));
        }
        return new Question(out, gold(where, row, options.size()));
    }

    private static String text(String where, JsonNode row, String field, String schema) {
        JsonNode v = row.get(field);
        if (v == null || !v.isTextual() || v.asText().isEmpty()) {
            throw new HfpruneException(where + ": \"" + field + "\" must be a non-empty string (rows are " + schema + ")");
        }
        return v.asText();
    }

    private static List<String> texts(String where, JsonNode row, String field, String schema) {
        JsonNode v = row.get(field);
        if (v == null || !v.isArray() || v.size() < 2) {
            throw new HfpruneException(where + ": \"" + field + "\" must be an array of at least two strings (rows are "
                    + schema + ")");
        }
        List<String> out = new ArrayList<>();
        for (JsonNode s : v) {
            if (!s.isTextual() || s.asText().isEmpty()) {
                throw new HfpruneException(where + ": \"" + field + "\" holds " + s + ", not a non-empty string");
            }
            out.add(s.asText());
        }
        return out;
    }

    private static int gold(String where, JsonNode row, int choices) {
        JsonNode v = row.get("gold");
        if (v == null || !v.isIntegralNumber() || v.asInt() < 0 || v.asInt() >= choices) {
            throw new HfpruneException(where + ": \"gold\" must be an integer index in [0, " + choices + "), found " + v);
        }
        return v.asInt();
    }

    private static List<Question> hellaswag(Path file, List<String> lines) {
        int n = lines.size();
        while (n > 0 && lines.get(n - 1).isEmpty()) { // a trailing newline is not an item
            n--;
        }
        if (n % HELLASWAG_LINES != 0) {
            int start = n - n % HELLASWAG_LINES + 1;
            throw new HfpruneException(file + ":" + start + ": the item starting here is incomplete (HellaSwag items are "
                    + "6 lines: context, gold label 0-3, four endings)");
        }
        List<Question> questions = new ArrayList<>();
        for (int start = 0; start < n; start += HELLASWAG_LINES) {
            String context = lines.get(start);
            if (context.isBlank()) {
                throw new HfpruneException(file + ":" + (start + 1) + ": empty HellaSwag context");
            }
            String label = lines.get(start + 1).strip();
            if (!label.matches("[0-3]")) {
                throw new HfpruneException(file + ":" + (start + 2) + ": HellaSwag gold label must be 0, 1, 2 or 3, found \""
                        + label + "\"");
            }
            List<Choice> choices = new ArrayList<>();
            for (int e = 0; e < 4; e++) {
                String ending = lines.get(start + 2 + e);
                if (ending.isBlank()) {
                    throw new HfpruneException(file + ":" + (start + 3 + e) + ": empty HellaSwag ending");
                }
                choices.add(new Choice(context.stripTrailing(), ending));
            }
            questions.add(new Question(choices, Integer.parseInt(label)));
        }
        return questions;
    }
}
