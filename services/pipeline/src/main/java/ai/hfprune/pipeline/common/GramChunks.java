package ai.hfprune.pipeline.common;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * How a symmetric n × n Gram matrix travels: its upper triangle only (n(n+1)/2 values instead of n²), row by row (row i
 * holds columns i..n-1), as float64 little-endian, cut at row boundaries into chunks of at most {@code maxBytes} of
 * values (at least one row each). Rows rowStart..rowEnd-1 are the contiguous packed range
 * [{@link #offset}(rowStart), {@link #offset}(rowEnd)), which is what lets chunks of different sizes be added into one
 * another.
 */
public final class GramChunks {
    private GramChunks() {
    }

    /** Rows [start, end) of one chunk. */
    public record Rows(int start, int end) {
    }

    /** Packed index of the diagonal element (row, row): Σ over k < row of (n − k). */
    public static long offset(int n, int row) {
        return (long) row * n - (long) row * (row - 1) / 2;
    }

    /** Values of the whole upper triangle. */
    public static long packedLength(int n) {
        return offset(n, n);
    }

    /** The chunks of an n × n matrix, in row order. */
    public static List<Rows> layout(int n, long maxBytes) {
        List<Rows> out = new ArrayList<>();
        int start = 0;
        while (start < n) {
            int end = start + 1;
            while (end < n && 8 * (offset(n, end + 1) - offset(n, start)) <= maxBytes) {
                end++;
            }
            out.add(new Rows(start, end));
            start = end;
        }
        return out;
    }

    /** Rows [start, end) of the full row-major matrix {@code full}, packed. */
    public static double[] pack(double[] full, int n, int start, int end) {
        double[] out = new double[Math.toIntExact(offset(n, end) - offset(n, start))];
        int k = 0;
        for (int i = start; i < end; i++) {
            System.arraycopy(full, i * n + i, out, k, n - i);
            k += n - i;
        }
        return out;
    }

    /** Writes the packed rows [start, end) into the full row-major matrix {@code full}, both triangles. */
    public static void unpack(double[] packed, int n, int start, int end, double[] full) {
        int k = 0;
        for (int i = start; i < end; i++) {
            for (int j = i; j < n; j++) {
                double v = packed[k++];
                full[i * n + j] = v;
                full[j * n + i] = v;
            }
        }
    }

    /** The diagonal elements' indices within packed rows [start, end): the first value of each row. */
    public static boolean diagonalNonNegative(double[] packed, int n, int start, int end) {
        int k = 0;
        for (int i = start; i < end; i++) {
            if (!(packed[k] >= 0)) {
                return false;
            }
            k += n - i;
        }
        return true;
    }

    /**
     * Adds the packed range [{@code fromOffset}, fromOffset + values.length) of the triangle into {@code target}, which
     * holds the packed range starting at {@code targetOffset}; only the overlap is added.
     */
    public static void addOverlap(double[] values, long fromOffset, double[] target, long targetOffset) {
        long lo = Math.max(fromOffset, targetOffset);
        long hi = Math.min(fromOffset + values.length, targetOffset + target.length);
        for (long p = lo; p < hi; p++) {
            target[(int) (p - targetOffset)] += values[(int) (p - fromOffset)];
        }
    }

    public static ByteBuffer toBytes(double[] values) {
        ByteBuffer b = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asDoubleBuffer().put(values);
        return b;
    }

    public static double[] fromBytes(ByteBuffer bytes) {
        ByteBuffer b = bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        double[] out = new double[b.remaining() / 8];
        b.asDoubleBuffer().get(out);
        return out;
    }
}
