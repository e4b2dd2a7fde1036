package ai.hfprune.engine.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.ProcessMemory;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.nn.LlamaModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Measures how much resident memory loading a model takes, in a fresh JVM of its own: memory that an earlier load in
 * the same process freed stays resident in the allocator and would hide part of the next load. The child prints one
 * line, {@code float32_bytes=N peak_growth_bytes=N}: the model's size in float32 and the peak resident size while
 * {@link Checkpoint#load} ran, above the resident size just before (the engine's native library already loaded).
 */
public final class LoadMemoryProbe {

    /** What one load took. */
    public record Result(long float32Bytes, long peakGrowthBytes) {
        public double ratio() {
            return (double) peakGrowthBytes / float32Bytes;
        }
    }

    private LoadMemoryProbe() {
    }

    /** Loads {@code model} in a child JVM on the CPU and returns what it took; empty where /proc cannot measure it. */
    public static Optional<Result> measure(Path model) {
        List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command().orElse("java"));
        command.add("-Xmx256m"); // the weights live outside the heap; a small heap keeps the baseline steady
        command.add("-XX:MaxDirectMemorySize=64m"); // and outside Java's direct memory, which a large model would overflow
        command.add("-Dai.djl.offline=true");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(LoadMemoryProbe.class.getName());
        command.add(model.toAbsolutePath().toString());
        try {
            // stderr joins stdout: the engine's log lines are shown only when the probe fails
            Process child = new ProcessBuilder(command).redirectErrorStream(true).start();
            String out = new String(child.getInputStream().readAllBytes());
            if (child.waitFor() != 0) {
                throw new IllegalStateException("the load probe failed on " + model + ":\n" + out);
            }
            return out.lines().filter(l -> l.startsWith("float32_bytes=")).findFirst().map(l -> {
                String[] fields = l.split(" ");
                return new Result(Long.parseLong(fields[0].split("=")[1]), Long.parseLong(fields[1].split("=")[1]));
            });
        } catch (IOException e) {
            throw new IllegalStateException("cannot start the load probe: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while measuring a load", e);
        }
    }

    public static void main(String[] args) {
        Engine.getEngine("PyTorch"); // the native library is not part of the model's cost
        try (Checkpoint checkpoint = Checkpoint.open(Path.of(args[0]))) {
            TensorSource weights = checkpoint.weights();
            long float32Bytes = 4 * weights.names().stream().mapToLong(weights::numel).sum();
            long before = ProcessMemory.residentBytes().orElse(-1);
            if (before < 0 || !ProcessMemory.resetPeak()) {
                return; // prints nothing: not measurable here
            }
            try (LlamaModel model = checkpoint.load(Device.cpu(), DataType.FLOAT32)) {
                long growth = ProcessMemory.peakResidentBytes().getAsLong() - before;
                System.out.printf(Locale.ROOT, "float32_bytes=%d peak_growth_bytes=%d%n", float32Bytes, growth);
            }
        }
    }
}
