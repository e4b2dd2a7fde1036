package ai.hfprune.engine.eval;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.testing.Assets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each task format on the real files of the assets (first item and row count), and malformed files. */
class TaskFilesTest {

    @TempDir
    Path tmp;

    private static ZeroShotTask asset(String file) {
        return TaskFiles.read(Assets.require("data/zeroshot/" + file));
    }

    @Test
    void queryChoicesFormatWithAnswerPrompt() {
        ZeroShotTask piqa = asset("piqa.jsonl");
        assertEquals("piqa", piqa.name());
        assertEquals(1838, piqa.questions().size());
        assertEquals("\nAnswer: ", piqa.delimiter());
        Question q = piqa.questions().get(0);
        assertEquals(0, q.gold());
        assertEquals(2, q.choices().size());
        // the file's query ends in "\n"; the harness prompt is "Question: {goal}\nAnswer:"
        assertEquals("Question: How do I ready a guinea pig cage for it's new occupants?", q.choices().get(0).context());
        assertTrue(q.choices().get(1).target().startsWith("Provide the guinea pig with a cage full of a few inches of bedding made of ripped jeans"));

        ZeroShotTask boolq = asset("boolq.jsonl");
        assertEquals(3270, boolq.questions().size());
        assertEquals("\nAnswer: ", boolq.delimiter());
        assertEquals(List.of("no", "yes"), boolq.questions().get(0).choices().stream().map(Choice::target).toList());
        assertTrue(boolq.questions().get(0).choices().get(0).context().endsWith("\nQuestion: does ethanol take more energy make that produces?"));

        ZeroShotTask arc = asset("arc_challenge.jsonl");
        assertEquals(1172, arc.questions().size());
        assertEquals(2, arc.questions().get(0).gold());
        assertEquals("Planetary days will become shorter.", arc.questions().get(0).choices().get(2).target());
        assertEquals(2376, asset("arc_easy.jsonl").questions().size());
    }

    @Test
    void queryChoicesFormatWithSpaceDelimiter() {
        ZeroShotTask obqa = asset("openbook_qa.jsonl");
        assertEquals("openbook_qa", obqa.name());
        assertEquals(500, obqa.questions().size());
        assertEquals(" ", obqa.delimiter());
        Question q = obqa.questions().get(0);
        assertEquals(1, q.gold());
        assertEquals("quit eating lunch out", q.choices().get(1).target());
        assertTrue(q.choices().get(1).context().startsWith("A person wants to start saving money"));
    }

    @Test
    void winograndePartialFormat() {
        ZeroShotTask wg = asset("winogrande.jsonl");
        assertEquals("winogrande", wg.name());
        assertEquals(1267, wg.questions().size());
        assertEquals(" ", wg.delimiter());
        Question q = wg.questions().get(0);
        assertEquals(1, q.gold());
        assertEquals(new Choice("Sarah was a much better surgeon than Maria so Sarah", "always got the easier cases."), q.choices().get(0));
        assertEquals(new Choice("Sarah was a much better surgeon than Maria so Maria", "always got the easier cases."), q.choices().get(1));
    }

    @Test
    void hellaswagSixLineFormat() {
        ZeroShotTask hs = asset("hellaswag_val.txt");
        assertEquals("hellaswag", hs.name());
        assertEquals(10042, hs.questions().size());
        assertEquals(" ", hs.delimiter());
        Question q = hs.questions().get(0);
        assertEquals(3, q.gold());
        assertEquals(4, q.choices().size());
        assertEquals("Roof shingle removal: A man is sitting on a roof. he", q.choices().get(0).context());
        assertEquals("is using wrap to wrap a pair of skis.", q.choices().get(0).target());
        assertEquals("starts pulling up roofing on a roof.", q.choices().get(3).target());
        assertEquals(2, hs.questions().get(2).gold());
    }

    /** A file's content, the line the error must name, and a word the message must contain. */
    static Stream<Arguments> malformedJsonl() {
        String good = "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n";
        return Stream.of(
                Arguments.of(good + good + "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], gold: 1}\n", 3, "not valid JSON"),
                Arguments.of("{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 2}\n", 1, "\"gold\""),
                Arguments.of("{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 0.5}\n", 1, "\"gold\""),
                Arguments.of("{\"query\": \"Q\", \"choices\": [\"a\", \"b\"]}\n", 1, "\"gold\""),
                Arguments.of("\n" + good + "{\"query\": \"Q\", \"choices\": [\"a\"], \"gold\": 0}\n", 3, "\"choices\""),
                Arguments.of("{\"query\": \"Q\", \"choices\": [\"a\", 7], \"gold\": 0}\n", 1, "\"choices\""),
                Arguments.of("{\"choices\": [\"a\", \"b\"], \"gold\": 0}\n", 1, "\"query\""),
                Arguments.of("{\"context_options\": [\"x\", \"y\"], \"continuation\": \"z\", \"gold\": 0}\n"
                        + "{\"context_options\": [\"x\", \"y\"], \"gold\": 0}\n", 2, "\"continuation\""),
                Arguments.of("[1, 2]\n", 1, "JSON object"));
    }

    @ParameterizedTest
    @MethodSource("malformedJsonl")
    void malformedJsonlNamesFileAndLine(String content, int line, String mentions) throws IOException {
        Path file = tmp.resolve("bad.jsonl");
        Files.writeString(file, content);
        HfpruneException e = assertThrows(HfpruneException.class, () -> TaskFiles.read(file));
        assertTrue(e.getMessage().startsWith(file + ":" + line + ":"), e.getMessage());
        assertTrue(e.getMessage().contains(mentions), e.getMessage());
    }

    @Test
    void malformedHellaswagNamesFileAndLine() throws IOException {
        String item = "Context line\n1\nend a\nend b\nend c\nend d\n";
        Path badLabel = tmp.resolve("badlabel.txt");
        Files.writeString(badLabel, item + item.replace("\n1\n", "\nfour\n"));
        HfpruneException e = assertThrows(HfpruneException.class, () -> TaskFiles.read(badLabel));
        assertTrue(e.getMessage().startsWith(badLabel + ":8:") && e.getMessage().contains("four"), e.getMessage());

        Path incomplete = tmp.resolve("incomplete.txt");
        Files.writeString(incomplete, item + "Context\n2\nend a\n");
        e = assertThrows(HfpruneException.class, () -> TaskFiles.read(incomplete));
        assertTrue(e.getMessage().startsWith(incomplete + ":7:") && e.getMessage().contains("incomplete"), e.getMessage());

        Path emptyEnding = tmp.resolve("emptyending.txt");
        Files.writeString(emptyEnding, item.replace("end c", ""));
        e = assertThrows(HfpruneException.class, () -> TaskFiles.read(emptyEnding));
        assertTrue(e.getMessage().startsWith(emptyEnding + ":5:"), e.getMessage());

        Path good = tmp.resolve("good_val.txt");
        Files.writeString(good, item + item);
        ZeroShotTask task = TaskFiles.read(good);
        assertEquals("good", task.name());
        assertEquals(2, task.questions().size());
    }

    @Test
    void missingEmptyOrUnknownFilesAreRejected() throws IOException {
        assertThrows(HfpruneException.class, () -> TaskFiles.read(tmp.resolve("nope.jsonl")));
        Path empty = Files.writeString(tmp.resolve("empty.jsonl"), "\n\n");
        HfpruneException e = assertThrows(HfpruneException.class, () -> TaskFiles.read(empty));
        assertTrue(e.getMessage().contains("no items"), e.getMessage());
        Path csv = Files.writeString(tmp.resolve("task.csv"), "a,b\n");
        assertThrows(HfpruneException.class, () -> TaskFiles.read(csv));
    }
}
