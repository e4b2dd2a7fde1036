package ai.hfprune.pipeline.common;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GramChunksTest {

    private static double[] symmetric(int n, long seed) {
        Random r = new Random(seed);
        double[] m = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                double v = r.nextGaussian();
                m[i * n + j] = v;
                m[j * n + i] = v;
            }
        }
        return m;
    }

    @Test
    void chunksTileTheTriangleWithinTheirSizeAndRoundTrip() {
        int n = 37;
        double[] full = symmetric(n, 1);
        for (long maxBytes : new long[] {8, 100, 8L * n, 1000, 1 << 20}) {
            List<GramChunks.Rows> layout = GramChunks.layout(n, maxBytes);
            double[] back = new double[n * n];
            int next = 0;
            long values = 0;
            for (GramChunks.Rows rows : layout) {
                assertEquals(next, rows.start());
                long count = GramChunks.offset(n, rows.end()) - GramChunks.offset(n, rows.start());
                assertTrue(8 * count <= maxBytes || rows.end() - rows.start() == 1, "chunk over the limit: " + rows + " at " + maxBytes);
                double[] packed = GramChunks.fromBytes(GramChunks.toBytes(GramChunks.pack(full, n, rows.start(), rows.end())));
                assertEquals(count, packed.length);
                GramChunks.unpack(packed, n, rows.start(), rows.end(), back);
                next = rows.end();
                values += count;
            }
            assertEquals(n, next);
            assertEquals((long) n * (n + 1) / 2, values);
            assertArrayEquals(full, back, 0.0, "round trip at " + maxBytes + " bytes");
        }
        assertEquals(1, GramChunks.layout(n, 1 << 20).size());
        assertEquals(n, GramChunks.layout(n, 8).size(), "at least one row per chunk");
    }

    /** Chunks of one layout add into the chunks of another: what lets scorers and the aggregator chunk differently. */
    @Test
    void chunksOfDifferentLayoutsAddUp() {
        int n = 23;
        double[] a = symmetric(n, 2);
        double[] packedA = GramChunks.pack(a, n, 0, n);
        List<GramChunks.Rows> target = GramChunks.layout(n, 120);
        double[][] sums = new double[target.size()][];
        for (int j = 0; j < target.size(); j++) {
            sums[j] = new double[(int) (GramChunks.offset(n, target.get(j).end()) - GramChunks.offset(n, target.get(j).start()))];
        }
        for (GramChunks.Rows rows : GramChunks.layout(n, 200)) {
            double[] part = GramChunks.pack(a, n, rows.start(), rows.end());
            for (int j = 0; j < target.size(); j++) {
                GramChunks.addOverlap(part, GramChunks.offset(n, rows.start()), sums[j], GramChunks.offset(n, target.get(j).start()));
            }
        }
        double[] joined = new double[packedA.length];
        for (int j = 0; j < target.size(); j++) {
            System.arraycopy(sums[j], 0, joined, (int) GramChunks.offset(n, target.get(j).start()), sums[j].length);
        }
        assertArrayEquals(packedA, joined, 0.0);
    }
}
