package ai.hfprune.engine.eval;

/**
 * One answer of a multiple-choice question: the model reads {@code context}, then the task's delimiter, and is
 * scored on how likely it finds {@code target}. For most tasks the context is the question and the target the
 * answer; for WinoGrande (partial scoring) the context is the sentence completed with one option and the
 * target is the rest of the sentence, the same for every option.
 */
public record Choice(String context, String target) {
}
