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

    @Test
    void sumsTheFlopsOfMatrixProductsFromTheirShapes(@TempDir Path dir) throws IOException {
        // mm of (15 x 7)(7 x 11) inside matmul (not counted again), bmm of 3 x (5 x 7)(7 x 4), addmm_ of
        // c + (15 x 2)(2 x 11), an add (not a product)
        Path trace = dir.resolve("trace.json");
        Files.writeString(trace, """
                [
                {"name": "aten::matmul", "ph": "X", "ts": 0, "dur": 9, "shape": [[3, 5, 7], [7, 11]]},
                {"name": "aten::mm", "ph": "X", "ts": 1, "dur": 4, "shape": [[15, 7], [7, 11]]},
                {"name": "aten::bmm", "ph": "X", "ts": 10, "dur": 4, "shape": [[3, 5, 7], [3, 7, 4]]},
                {"name": "aten::addmm_", "ph": "X", "ts": 15, "dur": 2, "shape": [[15, 11], [15, 2], [2, 11], [], []]},
                {"name": "aten::add", "ph": "X", "ts": 20, "dur": 2, "shape": [[15, 11], [15, 11], []]}
                ]
                """);
        assertEquals(2.0 * 15 * 7 * 11 + 2.0 * 3 * 5 * 7 * 4 + 2.0 * 15 * 2 * 11, OperatorTrace.matrixProductFlops(trace));
    }
}
