package ai.hfprune.engine.eval;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.testing.Assets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TaskCatalogTest {

    @TempDir
    Path tmp;

    private static Path zeroshot() {
        return Assets.require("data/zeroshot");
    }

    @Test
    void allNamesEveryTaskOfTheAssets() {
        List<String> names = TaskCatalog.resolve("all", TaskCatalogTest::zeroshot).stream().map(TaskFiles::taskName).toList();
        assertEquals(List.of("arc_challenge", "arc_easy", "boolq", "hellaswag", "openbook_qa", "piqa", "winogrande"), names);
    }

    @Test
    void namesAndPathsInTheirOrder() throws IOException {
        Path own = Files.writeString(tmp.resolve("mine.jsonl"), "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n");
        List<Path> files = TaskCatalog.resolve("hellaswag, boolq," + own + ",boolq", TaskCatalogTest::zeroshot);
        assertEquals(List.of(zeroshot().resolve("hellaswag_val.txt"), zeroshot().resolve("boolq.jsonl"), own), files);
    }

    @Test
    void aFolderGivesItsTaskFiles() throws IOException {
        Files.writeString(tmp.resolve("b.jsonl"), "");
        Files.writeString(tmp.resolve("a.txt"), "");
        Files.writeString(tmp.resolve("notes.md"), "");
        List<Path> files = TaskCatalog.resolve(tmp.toString(), () -> {
            throw new AssertionError("the default folder is not needed");
        });
        assertEquals(List.of(tmp.resolve("a.txt"), tmp.resolve("b.jsonl")), files);
    }

    @Test
    void unknownTaskListsTheKnownOnes() {
        HfpruneException e = assertThrows(HfpruneException.class,
                () -> TaskCatalog.resolve("boolq,mmlu", TaskCatalogTest::zeroshot));
        assertTrue(e.getMessage().contains("\"mmlu\"") && e.getMessage().contains("winogrande"), e.getMessage());
        assertThrows(HfpruneException.class, () -> TaskCatalog.resolve(" , ", TaskCatalogTest::zeroshot));
        assertThrows(HfpruneException.class, () -> TaskCatalog.resolve("all", () -> tmp.resolve("missing")));
    }
}
