package ai.hfprune.tests;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

/**
 * What the llama.cpp oracle tests share: the skip where node/npm are missing (checked before each test, so Maven
 * counts every test as skipped with its reason) and one oracle process per test class.
 */
abstract class LlamaCppTestBase {

    static LlamaCpp llamaCpp;

    @TempDir
    Path tmp;

    @BeforeEach
    void startLlamaCpp() throws Exception {
        System.setProperty("ai.djl.offline", "true");
        LlamaCpp.requireInstalled();
        if (llamaCpp == null) {
            llamaCpp = LlamaCpp.start();
        }
    }

    @AfterAll
    static void stopLlamaCpp() throws Exception {
        if (llamaCpp != null) {
            llamaCpp.close();
            llamaCpp = null;
        }
    }
}
