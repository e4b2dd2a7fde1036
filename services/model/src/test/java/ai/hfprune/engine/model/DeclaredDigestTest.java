package ai.hfprune.engine.model;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.engine.testing.ProcessIo;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code model.sha256}: a declared identity lets a process that never reads the weights skip the digest even where
 * none is cached, and a process that reads them refuses one that is wrong.
 */
class DeclaredDigestTest {

    @AfterEach
    void clearProperty() {
        System.clearProperty("hfprune.digest.cache");
    }

    @Test
    void aDeclaredDigestIsTakenWithoutReadingTheWeights() throws IOException {
        assumeTrue(ProcessIo.available(), "needs Linux's /proc/self/io");
        System.setProperty("hfprune.digest.cache", "off");
        Path model = Assets.stories260K();
        long size = Files.size(model);
        long read0 = ProcessIo.bytesRead();
        String digest;
        try (CheckpointFiles c = CheckpointFiles.open(model)) {
            digest = c.sha256(); // no cache: every byte
        }
        long digesting = ProcessIo.bytesRead() - read0;
        assertTrue(digesting >= size, "the measurement sees the digest's reads: " + digesting + " of " + size + " bytes");

        long read1 = ProcessIo.bytesRead();
        try (CheckpointFiles c = CheckpointFiles.open(model)) {
            c.declareSha256(digest);
            assertEquals(digest, c.sha256());
        }
        long declared = ProcessIo.bytesRead() - read1;
        assertTrue(declared < size / 2, "opening and identifying by the declaration read " + declared + " of " + size + " bytes");
    }

    @Test
    void aProcessThatReadsTheWeightsRefusesAWrongDeclaration() {
        System.setProperty("hfprune.digest.cache", "off");
        try (CheckpointFiles c = CheckpointFiles.open(Assets.stories260K())) {
            String actual = c.sha256();
            c.verifySha256(actual);
            String wrong = "0".repeat(64);
            HfpruneException e = assertThrows(HfpruneException.class, () -> c.verifySha256(wrong));
            assertTrue(e.getMessage().contains("model.sha256 is " + wrong + " but the weights of") && e.getMessage().contains(actual),
                    e.getMessage());
        }
    }

    @Test
    void aDeclarationTheDigestCacheContradictsIsRefused(@TempDir Path cache) {
        System.setProperty("hfprune.digest.cache", cache.toString());
        String actual;
        try (CheckpointFiles c = CheckpointFiles.open(Assets.stories260K())) {
            actual = c.sha256(); // cached now
        }
        try (CheckpointFiles c = CheckpointFiles.open(Assets.stories260K())) {
            HfpruneException e = assertThrows(HfpruneException.class, () -> c.declareSha256("f".repeat(64)));
            assertTrue(e.getMessage().contains("the digest cache knows") && e.getMessage().contains(actual), e.getMessage());
            c.declareSha256(actual); // the right one agrees with the cache
            assertEquals(actual, c.sha256());
        }
    }

    @Test
    void aMalformedDeclarationSaysWhatADigestLooksLike() {
        HfpruneException e = assertThrows(HfpruneException.class, () -> CheckpointFiles.checkedDigest("ABC"));
        assertTrue(e.getMessage().contains("64 lower-case hexadecimal digits") && e.getMessage().contains("'ABC'"), e.getMessage());
    }
}
