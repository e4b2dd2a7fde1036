package ai.hfprune.pipeline.aggregator;

import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * What the aggregator knows of one scorer group: pending (its batches, and which rows of which matrix have arrived),
 * or only that it was folded or dropped (a few bytes: its later chunks are duplicates).
 */
final class StatsGroup {

    enum Status { PENDING, FOLDED, DROPPED }

    Status status;
    long tokens;
    long windows;
    List<String> batchIds;
    /** [matrix = 2·layer + (HEADS ? 1 : 0)][chunk]: the rows of each chunk received; end 0 = not received yet. */
    int[][] starts;
    int[][] ends;
    /** Matrices whose first chunk carried output sensitivities: 0 or all of them, else the group is inconsistent. */
    int sensitive;

    private StatsGroup(Status status, long tokens, long windows, List<String> batchIds, int[][] starts, int[][] ends) {
        this.status = status;
        this.tokens = tokens;
        this.windows = windows;
        this.batchIds = batchIds;
        this.starts = starts;
        this.ends = ends;
    }

    static StatsGroup pending(long tokens, long windows, List<String> batchIds, int matrices) {
        return new StatsGroup(Status.PENDING, tokens, windows, List.copyOf(batchIds), new int[matrices][], new int[matrices][]);
    }

    /** The final state of a folded or dropped group: its tokens are kept for the record, nothing else. */
    StatsGroup closed(Status status) {
        return new StatsGroup(status, tokens, windows, List.of(), new int[0][], new int[0][]);
    }

    static StatsGroup droppedMarker() {
        return new StatsGroup(Status.DROPPED, 0, 0, List.of(), new int[0][], new int[0][]);
    }

    boolean received(int matrix, int chunk) {
        return ends[matrix] != null && ends[matrix][chunk] > 0;
    }

    /** Whether every matrix's first chunk carried output sensitivities (the group's sums then include them). */
    boolean withSensitivity() {
        return sensitive == ends.length;
    }

    boolean allChunks() {
        for (int[] e : ends) {
            if (e == null) {
                return false;
            }
            for (int end : e) {
                if (end == 0) {
                    return false;
                }
            }
        }
        return true;
    }

    /** Whether the chunks of matrix {@code m} cover its rows 0..dim-1 in order, without gaps or overlaps. */
    boolean tiles(int m, int dim) {
        int next = 0;
        for (int c = 0; c < ends[m].length; c++) {
            if (starts[m][c] != next) {
                return false;
            }
            next = ends[m][c];
        }
        return next == dim;
    }

    static Serde<StatsGroup> serde() {
        return Serdes.serdeFrom((topic, g) -> {
            if (g == null) {
                return null;
            }
            try {
                ByteArrayOutputStream bytes = new ByteArrayOutputStream();
                DataOutputStream out = new DataOutputStream(bytes);
                out.writeByte(g.status.ordinal());
                out.writeLong(g.tokens);
                out.writeLong(g.windows);
                out.writeInt(g.batchIds.size());
                for (String id : g.batchIds) {
                    out.writeUTF(id);
                }
                out.writeInt(g.ends.length);
                for (int m = 0; m < g.ends.length; m++) {
                    out.writeInt(g.ends[m] == null ? -1 : g.ends[m].length);
                    for (int c = 0; g.ends[m] != null && c < g.ends[m].length; c++) {
                        out.writeInt(g.starts[m][c]);
                        out.writeInt(g.ends[m][c]);
                    }
                }
                out.writeInt(g.sensitive);
                out.flush();
                return bytes.toByteArray();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }, (topic, data) -> {
            if (data == null) {
                return null;
            }
            try {
                DataInputStream in = new DataInputStream(new ByteArrayInputStream(data));
                Status status = Status.values()[in.readByte()];
                long tokens = in.readLong();
                long windows = in.readLong();
                int n = in.readInt();
                List<String> ids = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    ids.add(in.readUTF());
                }
                int matrices = in.readInt();
                int[][] starts = new int[matrices][];
                int[][] ends = new int[matrices][];
                for (int m = 0; m < matrices; m++) {
                    int chunks = in.readInt();
                    if (chunks >= 0) {
                        starts[m] = new int[chunks];
                        ends[m] = new int[chunks];
                        for (int c = 0; c < chunks; c++) {
                            starts[m][c] = in.readInt();
                            ends[m][c] = in.readInt();
                        }
                    }
                }
                StatsGroup g = new StatsGroup(status, tokens, windows, ids, starts, ends);
                g.sensitive = in.available() > 0 ? in.readInt() : 0; // state written before the sensitivities had none
                return g;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }
}
