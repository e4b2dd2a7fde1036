package ai.hfprune.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The count of top-level operator calls in a Chrome trace as libtorch's profiler writes it. */
class OperatorTraceTest {

    @Test
    void countsOnlyCallsNotMadeByAnotherCall(@TempDir Path dir) throws IOException {
        // linear (0-10) calls t (1-2) and matmul (3-9), which calls mm (4-8); then add (10-12), touching linear's end;
        // then a non-aten event and a counter event, neither counted
        Path trace = dir.resolve("trace.json");
        Files.writeString(trace, """
                [
                {"name": "aten::t", "ph": "X", "ts": 1, "dur": 1},
                {"name": "aten::linear", "ph": "X", "ts": 0, "dur": 10},
                {"name": "aten::mm", "ph": "X", "ts": 4, "dur": 4},
                {"name": "aten::matmul", "ph": "X", "ts": 3, "dur": 6},
                {"name": "aten::add", "ph": "X", "ts": 10, "dur": 2},
                {"name": "[memory]", "ph": "X", "ts": 20, "dur": 1},
                {"name": "aten::mul", "ph": "i", "ts": 30}
                ]
                """);
        assertEquals(2, OperatorTrace.topLevelCalls(trace));
    }
}
