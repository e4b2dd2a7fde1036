package ai.hfprune.pipeline.sampler;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.data.CalibrationData;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.testing.Assets;
import ai.hfprune.engine.tokenizer.Tokenizer;
import ai.hfprune.schemas.ModelId;
import ai.hfprune.schemas.TokenBatch;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The sampler packs exactly as {@code hfprune score}: same windows, same batches, for the same documents. */
class BatchPackerTest {

    private static Checkpoint checkpoint;
    private static Tokenizer tokenizer;
    private static ModelId model;
    private static Path trainText;
    private static List<String> docs;

    @BeforeAll
    static void open() {
        checkpoint = Checkpoint.open(Assets.stories260K());
        tokenizer = checkpoint.tokenizer();
        model = new ModelId(checkpoint.name(), checkpoint.sha256());
        trainText = Assets.require("data/tinystories/train-head-2MiB.txt");
        docs = CalibrationData.readDocuments(trainText).subList(0, 40);
    }

    @AfterAll
    static void close() {
        checkpoint.close();
    }

    private static BatchPacker packer(int seqLen, int batchWindows, int maxWindows) {
        return new BatchPacker(model, tokenizer, seqLen, batchWindows, List.of("entropy", "ce"), maxWindows, () -> 1234L);
    }

    /** Packs a file as a file run of the sampler does. */
    private static List<TokenBatch> fileRun(Path file, int seqLen, int batchWindows, int maxWindows) {
        BatchPacker p = packer(seqLen, batchWindows, maxWindows);
        List<TokenBatch> out = new ArrayList<>();
        DocumentFiles.forEachDocument(file, "text", d -> {
            p.add(d, file.getFileName().toString(), out::add);
            return !p.capped();
        });
        p.finish(out::add);
        return out;
    }

    private static void assertSameBatches(List<int[][]> expected, List<TokenBatch> actual) {
        assertEquals(expected.size(), actual.size(), "batches");
        for (int b = 0; b < expected.size(); b++) {
            int[][] windows = BatchPacker.windows(actual.get(b));
            assertEquals(expected.get(b).length, windows.length, "windows of batch " + b);
            for (int w = 0; w < windows.length; w++) {
                assertArrayEquals(expected.get(b)[w], windows[w], "batch " + b + " window " + w);
            }
        }
    }

    @Test
    void aFileRunEqualsScoreCommandWindowsAndBatches() {
        // 20 windows in batches of 3: six full batches and a last one of 2, as CalibrationData.batches makes them
        int[][] windows = CalibrationData.readWindows(trainText, () -> tokenizer, tokenizer.vocabSize(), 32, 20);
        List<int[][]> expected = CalibrationData.batches(windows, 3);
        List<TokenBatch> batches = fileRun(trainText, 32, 3, 20);
        assertSameBatches(expected, batches);
        assertEquals(2, batches.get(batches.size() - 1).getWindows().size());
        for (int b = 0; b < batches.size(); b++) {
            TokenBatch batch = batches.get(b);
            assertEquals(b, batch.getSequence());
            assertEquals(32, batch.getSeqLen());
            assertEquals(List.of("entropy", "ce"), batch.getCriteria());
            assertEquals(model, batch.getModel());
            assertEquals("train-head-2MiB.txt", batch.getSource());
            assertEquals(1234L, batch.getCreatedAtMillis());
        }
    }

    @Test
    void allWindowsOfDocumentsEqualCalibrationDataWithTheRemainderDropped() {
        int[][] windows = CalibrationData.windows(docs, tokenizer, 64, 0, "docs");
        BatchPacker p = packer(64, 4, 0);
        List<TokenBatch> out = new ArrayList<>();
        docs.forEach(d -> p.add(d, "docs", out::add));
        p.finish(out::add);
        assertSameBatches(CalibrationData.batches(windows, 4), out);
        assertEquals(windows.length, p.windowsInBatches());
    }

    @Test
    void followModeCarriesTheRemainderOverAndSendsOnlyFullBatches() {
        BatchPacker p = packer(16, 2, 0);
        List<TokenBatch> out = new ArrayList<>();
        List<Integer> stream = new ArrayList<>();
        for (String d : docs.subList(0, 7)) {
            p.add(d, "raw", out::add);
            stream.add(tokenizer.bosId());
            for (int id : tokenizer.encode(d)) {
                stream.add(id);
            }
            // every batch so far is full, and the carried tokens are what the windows have not taken
            assertTrue(out.stream().allMatch(b -> b.getWindows().size() == 2));
            assertEquals(stream.size(), p.streamTokens());
            assertEquals(stream.size() / 16, p.windowsPacked());
        }
        // the windows are the consecutive T-token slices of one stream: BOS of a later document mid-window
        List<Integer> flat = new ArrayList<>();
        out.forEach(b -> b.getWindows().forEach(flat::addAll));
        assertEquals(stream.subList(0, flat.size()), flat);
        assertTrue(out.size() >= 3);
        long bosInside = out.stream().flatMap(b -> b.getWindows().stream())
                .filter(w -> w.subList(1, w.size()).contains(tokenizer.bosId())).count();
        assertTrue(bosInside > 0, "a window spans two documents");
        // the windows are those of CalibrationData for the same documents; only the unfilled batch is held back
        int[][] all = CalibrationData.windows(docs.subList(0, 7), tokenizer, 16, 0, "docs");
        assertEquals(all.length / 2, out.size());
        assertSameBatches(CalibrationData.batches(all, 2).subList(0, out.size()), out);
    }

    @Test
    void duplicateDocumentsAreSkipped() {
        BatchPacker p = packer(16, 2, 0);
        List<TokenBatch> out = new ArrayList<>();
        assertEquals(BatchPacker.Outcome.SENT, p.add(docs.get(0), "a", out::add));
        assertEquals(BatchPacker.Outcome.SENT, p.add(docs.get(1), "a", out::add));
        assertEquals(BatchPacker.Outcome.DUPLICATE, p.add(docs.get(0), "b", out::add));
        assertEquals(BatchPacker.Outcome.DUPLICATE, p.add("\n  " + docs.get(1) + "\n\n", "b", out::add), "trimmed text is the same");
        assertEquals(BatchPacker.Outcome.EMPTY, p.add(" \n\t", "b", out::add));
        assertEquals(BatchPacker.Outcome.EMPTY, p.add(null, "b", out::add));
        assertEquals(BatchPacker.Outcome.SENT, p.add(docs.get(2), "a", out::add));
        p.finish(out::add);

        BatchPacker reference = packer(16, 2, 0);
        List<TokenBatch> expected = new ArrayList<>();
        docs.subList(0, 3).forEach(d -> reference.add(d, "a", expected::add));
        reference.finish(expected::add);
        assertEquals(ids(expected), ids(out));
    }

    @Test
    void theWindowCapStopsReading() {
        BatchPacker p = packer(32, 2, 5);
        List<TokenBatch> out = new ArrayList<>();
        int read = 0;
        for (String d : docs) {
            if (p.add(d, "a", out::add) == BatchPacker.Outcome.CAPPED) {
                break;
            }
            read++;
        }
        p.finish(out::add);
        assertTrue(read < docs.size());
        assertEquals(List.of(2, 2, 1), out.stream().map(b -> b.getWindows().size()).toList());
        assertSameBatches(CalibrationData.batches(CalibrationData.windows(docs, tokenizer, 32, 5, "docs"), 2), out);
    }

    @Test
    void batchIdsAreStableAndDependOnModelLengthAndTokensOnly() {
        List<TokenBatch> a = fileRun(trainText, 32, 2, 6);
        BatchPacker other = new BatchPacker(model, tokenizer, 32, 2, List.of("activation"), 6, () -> 99L);
        List<TokenBatch> b = new ArrayList<>();
        for (String d : docs) {
            other.add(d, "elsewhere", b::add);
        }
        other.finish(b::add);
        assertEquals(ids(a), ids(b).subList(0, 3), "criteria, source and time do not change an id");
        for (TokenBatch batch : a) {
            int[][] windows = BatchPacker.windows(batch);
            assertEquals(BatchPacker.batchId(model.getSha256(), 32, windows), batch.getBatchId());
            assertEquals(64, batch.getBatchId().length());
            assertTrue(batch.getBatchId().matches("[0-9a-f]+"));
            assertNotEquals(batch.getBatchId(), BatchPacker.batchId("another-sha", 32, windows));
            int[][] changed = new int[][] {windows[0].clone(), windows[1]};
            changed[0][5]++;
            assertNotEquals(batch.getBatchId(), BatchPacker.batchId(model.getSha256(), 32, changed));
        }
        assertEquals(3, IntStream.range(0, 3).mapToObj(i -> a.get(i).getBatchId()).distinct().count());
        // T is part of the id even for the same token ids
        int[][] w = {{1, 2, 3, 4}};
        assertNotEquals(BatchPacker.batchId("s", 4, w), BatchPacker.batchId("s", 2, new int[][] {{1, 2}, {3, 4}}));
    }

    @Test
    void criteriaAreCheckedAndNormalised() {
        assertEquals(List.of("entropy", "ce"), BatchPacker.criteriaIds(List.of(" Entropy", "ce", "entropy", "")));
        assertThrows(HfpruneException.class, () -> BatchPacker.criteriaIds(List.of("entropy", "bogus")));
        assertThrows(HfpruneException.class, () -> BatchPacker.criteriaIds(List.of(" ")));
    }

    @Test
    void jsonlAndFolders(@TempDir Path dir) throws IOException {
        Path sub = Files.createDirectories(dir.resolve("b"));
        Files.writeString(dir.resolve("a.jsonl"), """
                {"text": "Once upon a time there was a cat.", "id": 1}

                {"id": 2}
                {"body": "x", "text": "  The dog ran home.  "}
                """);
        Files.writeString(sub.resolve("c.txt"), "First story.\n<|endoftext|>\nSecond story.\n");
        Files.writeString(dir.resolve("README.md"), "not data");
        List<Path> files = DocumentFiles.expand(List.of(dir));
        assertEquals(List.of(dir.resolve("a.jsonl"), sub.resolve("c.txt")), files);

        List<String> read = new ArrayList<>();
        files.forEach(f -> DocumentFiles.forEachDocument(f, "text", read::add));
        assertEquals(List.of("Once upon a time there was a cat.", "  The dog ran home.  ", "First story.", "Second story."), read);

        List<String> bodies = new ArrayList<>();
        DocumentFiles.forEachDocument(dir.resolve("a.jsonl"), "body", bodies::add);
        assertEquals(List.of("x"), bodies);

        assertEquals(List.of(Path.of("x.txt"), Path.of("y")), DocumentFiles.parse(" x.txt, ,y"));
        assertThrows(HfpruneException.class, () -> DocumentFiles.expand(List.of(dir.resolve("README.md"))));
        assertThrows(HfpruneException.class, () -> DocumentFiles.expand(List.of(dir.resolve("missing.txt"))));
        Files.writeString(dir.resolve("bad.jsonl"), "{\"text\": \"ok\"}\nnot json\n");
        HfpruneException e = assertThrows(HfpruneException.class,
                () -> DocumentFiles.forEachDocument(dir.resolve("bad.jsonl"), "text", d -> true));
        assertTrue(e.getMessage().contains("line 2"), e.getMessage());
    }

    private static List<String> ids(List<TokenBatch> batches) {
        return batches.stream().map(TokenBatch::getBatchId).toList();
    }
}
