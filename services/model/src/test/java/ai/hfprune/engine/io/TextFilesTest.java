package ai.hfprune.engine.io;

import ai.hfprune.engine.HfpruneException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TextFilesTest {

    @Test
    void validTextDecodesAsIs() {
        String text = "Once upon a time — «é», 猫, 🐈\n";
        assertEquals(text, TextFiles.decode(text.getBytes(StandardCharsets.UTF_8), "x"));
    }

    @Test
    void aBadByteIsRefusedWithItsOffset() {
        byte[] bytes = "café \u00ff".getBytes(StandardCharsets.ISO_8859_1); // é and ÿ as Latin-1: not UTF-8
        HfpruneException e = assertThrows(HfpruneException.class, () -> TextFiles.decode(bytes, "data file f.txt"));
        assertTrue(e.getMessage().contains("data file f.txt is not valid UTF-8: the byte at offset 3 (0xE9)"), e.getMessage());
    }

    @Test
    void linesAreHandedOutOneByOneAndABadByteIsFoundByItsOffsetInTheFile(@TempDir Path tmp) throws IOException {
        byte[] longLine = new byte[70_000]; // longer than a read chunk
        Arrays.fill(longLine, (byte) 'a');
        Path file = tmp.resolve("lines.txt");
        Files.write(file, longLine);
        Files.write(file, "\nzwei\n\ndrei".getBytes(StandardCharsets.UTF_8), StandardOpenOption.APPEND);
        List<String> lines = new ArrayList<>();
        TextFiles.forEachLine(file, "f", (line, n) -> lines.add(n + ":" + line.length()));
        assertEquals(List.of("1:70000", "2:4", "3:0", "4:4"), lines);

        Files.write(file, new byte[] {'\n', 'x', (byte) 0x80}, StandardOpenOption.APPEND);
        HfpruneException e = assertThrows(HfpruneException.class, () -> TextFiles.forEachLine(file, "f", (line, n) -> true));
        assertTrue(e.getMessage().contains("offset " + (70_000 + 11 + 2) + " (0x80)"), e.getMessage());
    }

    @Test
    void aCharacterCutShortAtTheEndIsRefused() {
        byte[] whole = "ab€".getBytes(StandardCharsets.UTF_8); // € is 3 bytes
        byte[] cut = Arrays.copyOf(whole, whole.length - 1);
        HfpruneException e = assertThrows(HfpruneException.class, () -> TextFiles.decode(cut, "f"));
        assertTrue(e.getMessage().contains("offset 2 (0xE2)"), e.getMessage());
    }
}
