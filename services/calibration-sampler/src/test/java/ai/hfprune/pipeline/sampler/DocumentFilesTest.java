package ai.hfprune.pipeline.sampler;

import ai.hfprune.engine.HfpruneException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The sampler's data files: bad bytes are refused with where they are, not with "Input length = 1". */
class DocumentFilesTest {

    @TempDir
    Path tmp;

    @Test
    void invalidUtf8TextNamesTheByteOffset() throws IOException {
        Path file = Files.write(tmp.resolve("a.txt"), new byte[] {'h', 'i', '\n', (byte) 0xFF, 'x'});
        HfpruneException e = assertThrows(HfpruneException.class, () -> DocumentFiles.forEachDocument(file, "text", d -> true));
        assertTrue(e.getMessage().contains("is not valid UTF-8: the byte at offset 3 (0xFF)"), e.getMessage());
    }

    @Test
    void invalidUtf8JsonlNamesTheByteOffset() throws IOException {
        byte[] bad = "{\"text\": \"caf\u00e9\"}\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        byte[] good = "{\"text\": \"fine\"}\n".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        Path file = tmp.resolve("a.jsonl");
        Files.write(file, good);
        Files.write(file, bad, java.nio.file.StandardOpenOption.APPEND);
        HfpruneException e = assertThrows(HfpruneException.class, () -> DocumentFiles.forEachDocument(file, "text", d -> true));
        // 17 bytes of the good line, then 13 of the bad one before its é
        assertTrue(e.getMessage().contains("is not valid UTF-8: the byte at offset 30 (0xE9)"), e.getMessage());
    }
}
