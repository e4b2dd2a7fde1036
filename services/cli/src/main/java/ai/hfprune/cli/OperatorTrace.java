package ai.hfprune.cli;

import ai.djl.pytorch.jni.JniUtils;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

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
        JniUtils.startProfile(false, false, false);
        try {
            work.run();
        } finally {
            JniUtils.stopProfile(file.toString());
        }
        return topLevelCalls(file);
    }

    private record Event(double start, double end) {
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
}
