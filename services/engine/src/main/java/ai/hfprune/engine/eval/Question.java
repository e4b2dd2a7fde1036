package ai.hfprune.engine.eval;

import java.util.List;

/** A multiple-choice item: its choices and the index of the right one. */
public record Question(List<Choice> choices, int gold) {

    public Question {
        choices = List.copyOf(choices);
        if (choices.size() < 2 || gold < 0 || gold >= choices.size()) {
            throw new IllegalArgumentException("a question needs at least two choices and a gold index among them");
        }
    }
}
