package ai.hfprune.engine.eval;

import java.nio.file.Path;
import java.util.List;

/**
 * A zero-shot multiple-choice task read from {@code file}.
 *
 * @param delimiter what separates a choice's context from its target, e.g. {@code " "} or {@code "\nAnswer: "}
 */
public record ZeroShotTask(String name, Path file, String delimiter, List<Question> questions) {

    public ZeroShotTask {
        questions = List.copyOf(questions);
    }

    /** The first {@code limit} questions (all when {@code limit} ≤ 0 or larger than the task). */
    public ZeroShotTask limit(int limit) {
        return limit <= 0 || limit >= questions.size() ? this
                : new ZeroShotTask(name, file, delimiter, questions.subList(0, limit));
    }
}
