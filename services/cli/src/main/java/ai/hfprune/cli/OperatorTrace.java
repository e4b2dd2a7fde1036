package ai.hfprune.cli;

import ai.djl.pytorch.jni.JniUtils;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * libtorch's own profiler around a piece of work (DJL's {@code JniUtils.startProfile}), and the count of top-level
 * operator calls in the Chrome trace it writes: {@code aten::} events not nested in another, so that {@code linear}
 * counts once, not with the {@code t} and {@code matmul} it calls. What generation's speed depends on (see README,
 * "Generation").
 */
final class OperatorTrace {

    private OperatorTrace() {
    }

    /** Runs {@code work} under the profiler, writes the trace to {@code file} and returns its top-level call count. */
    static long count(Path file, Runnable work) {
        trace(file, work);
        return topLevelCalls(file);
    }

    /** Runs {@code work} under the profiler and writes the trace to {@code file}, with each call's input shapes. */
    static void trace(Path file, Runnable work) {
        JniUtils.startProfile(false, true, false);
        try {
            work.run();
        } finally {
            JniUtils.stopProfile(file.toString());
        }
    }

    private record Event(double start, double end) {
    }

    /** One operator's share of a trace: its calls and its self time (its own, less that of the calls it made). */
    record OperatorTime(String name, long calls, double selfMillis) {
    }

    /**
     * Self time per event name over the trace's complete events, thread by thread, most first: where a traced piece
     * of work spends its time, with {@code aten::mm} apart from the element-wise operators and from the autograd
     * engine's own bookkeeping ({@code autograd::engine::evaluate_function: …}).
     */
    static List<OperatorTime> selfTimes(Path file) {
        Map<String, List<JsonNode>> byThread = new HashMap<>();
        try {
            for (JsonNode e : new ObjectMapper().readTree(file.toFile())) {
                if ("X".equals(e.path("ph").asText())) {
                    byThread.computeIfAbsent(e.path("pid").asText() + "/" + e.path("tid").asText(), k -> new ArrayList<>()).add(e);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Map<String, double[]> totals = new HashMap<>(); // name -> {calls, self microseconds}
        for (List<JsonNode> events : byThread.values()) {
            events.sort(Comparator.<JsonNode>comparingDouble(e -> e.path("ts").asDouble())
                    .thenComparing(Comparator.<JsonNode>comparingDouble(e -> e.path("dur").asDouble()).reversed()));
            Deque<double[]> open = new ArrayDeque<>(); // {end, self so far, index}
            List<String> names = new ArrayList<>();
            for (JsonNode e : events) {
                double start = e.path("ts").asDouble();
                double dur = e.path("dur").asDouble();
                while (!open.isEmpty() && open.peek()[0] <= start) {
                    close(open.pop(), names, totals);
                }
                if (!open.isEmpty()) {
                    open.peek()[1] -= dur; // the parent's self time excludes this call
                }
                names.add(e.path("name").asText());
                open.push(new double[] {start + dur, dur, names.size() - 1});
            }
            while (!open.isEmpty()) {
                close(open.pop(), names, totals);
            }
        }
        List<OperatorTime> out = new ArrayList<>();
        totals.forEach((name, t) -> out.add(new OperatorTime(name, (long) t[0], t[1] / 1e3)));
        out.sort(Comparator.comparingDouble(OperatorTime::selfMillis).reversed());
        return out;
    }

    private static void close(double[] event, List<String> names, Map<String, double[]> totals) {
        double[] t = totals.computeIfAbsent(names.get((int) event[2]), k -> new double[2]);
        t[0]++;
        t[1] += Math.max(0, event[1]);
    }

    static long topLevelCalls(Path file) {
        List<Event> events = new ArrayList<>();
        try {
            for (JsonNode e : new ObjectMapper().readTree(file.toFile())) {
                if ("X".equals(e.path("ph").asText()) && e.path("name").asText().startsWith("aten::")) {
                    double ts = e.path("ts").asDouble();
                    events.add(new Event(ts, ts + e.path("dur").asDouble()));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        // by start, the longer first: an event inside the last top-level one is a call it made
        events.sort(Comparator.comparingDouble(Event::start).thenComparing(Comparator.comparingDouble(Event::end).reversed()));
        long count = 0;
        double end = Double.NEGATIVE_INFINITY;
        for (Event e : events) {
            if (e.start() >= end) {
                count++;
                end = e.end();
            }
        }
        return count;
    }

    /**
     * The FLOPs of the matrix products in a trace written by {@link #trace}: 2·m·k·n for each {@code aten::mm} of
     * (m × k)·(k × n) and each {@code aten::addmm(_)} of c + (m × k)·(k × n), b times that for each {@code aten::bmm},
     * from the input shapes the profiler recorded. These are the kernels {@code matmul}, {@code linear} and autograd's
     * backward functions call (none calls another), so nothing is counted twice.
     */
    static double matrixProductFlops(Path file) {
        double flops = 0;
        try {
            for (JsonNode e : new ObjectMapper().readTree(file.toFile())) {
                if (!"X".equals(e.path("ph").asText())) {
                    continue;
                }
                JsonNode shape = e.path("shape");
                switch (e.path("name").asText()) {
                    case "aten::mm" -> flops += 2.0 * dim(shape, 0, 0) * dim(shape, 0, 1) * dim(shape, 1, 1);
                    case "aten::bmm" -> flops += 2.0 * dim(shape, 0, 0) * dim(shape, 0, 1) * dim(shape, 0, 2) * dim(shape, 1, 2);
                    // c + a·b: the product's operands are the second and third inputs
                    case "aten::addmm", "aten::addmm_" -> flops += 2.0 * dim(shape, 1, 0) * dim(shape, 1, 1) * dim(shape, 2, 1);
                    default -> { }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return flops;
    }

    private static double dim(JsonNode shape, int input, int axis) {
        JsonNode d = shape.path(input).path(axis);
        if (!d.isNumber()) {
            throw new IllegalStateException("the trace has no shape for a matrix product (traced without shapes?): " + shape);
        }
        return d.asDouble();
    }
}
