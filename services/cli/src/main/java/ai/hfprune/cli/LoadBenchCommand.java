package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.MallocTuning;
import ai.hfprune.engine.MklOverride;
import ai.hfprune.engine.io.FileTrees;
import ai.hfprune.engine.io.SafetensorsSource.Dtype;
import ai.hfprune.engine.model.LoadMemoryProbe;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/**
 * The memory rule for loading ("at most about 1.5x the model's float32 size"), measured: each load runs in a fresh
 * JVM ({@link LoadMemoryProbe}) and reports its peak resident memory above the resident size just before.
 */
@Command(name = "load", mixinStandardHelpOptions = true,
        description = "Peak resident memory of loading a model, against its float32 size (target: at most about 1.5x). "
                + "By default on a random checkpoint of TinyLlama-1.1B's shape, written as sharded BF16 and as F32 safetensors.")
class LoadBenchCommand implements Callable<Integer> {

    @Option(names = "--model", paramLabel = "MODEL",
            description = "Measure this GGUF file or Hugging Face directory instead of the synthetic checkpoints.")
    Path model;

    @Option(names = "--dtypes", split = ",", defaultValue = "BF16,F32",
            description = "Storage types of the synthetic checkpoint (default: ${DEFAULT-VALUE}).")
    List<String> dtypes;

    @Option(names = "--layers", defaultValue = "22", description = "Layers of the synthetic checkpoint (default: ${DEFAULT-VALUE}).")
    int layers;

    @Option(names = "--max-shard-size", defaultValue = "2GB", description = "Shard size of the synthetic checkpoint (default: ${DEFAULT-VALUE}).")
    String maxShardSize;

    @Option(names = "--work-dir", paramLabel = "DIR",
            description = "Where the synthetic checkpoint is written, then deleted (default: the system's temporary folder).")
    Path workDir;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        out.println(MklOverride.describe());
        out.println(MallocTuning.describe());
        out.printf("%-40s %6s %10s %13s %12s %6s%n", "checkpoint", "stored", "file size", "float32 size", "peak growth", "ratio");
        if (model != null) {
            report(out, model.getFileName().toString(), "as is", model);
            return 0;
        }
        // TinyLlama-1.1B: hidden 2048, intermediate 5632, 32 heads over 4 KV heads, vocabulary 32000.
        ModelConfig config = RandomModels.llama(32000, 2048, 5632, layers, 32, 4);
        long shard = ByteSizes.parse("--max-shard-size", maxShardSize);
        for (String name : dtypes) {
            Dtype dtype = Dtype.parse(name, "--dtypes");
            Path dir = Files.createTempDirectory(workDir != null ? Files.createDirectories(workDir) : Path.of(System.getProperty("java.io.tmpdir")),
                    "hfprune-bench-load-");
            try {
                RandomModels.writeHuggingFace(config, 1, dtype, shard, dir);
                report(out, "synthetic, TinyLlama shape, " + layers + " layers", dtype.name(), dir);
            } finally {
                FileTrees.deleteQuietly(dir);
            }
        }
        out.println("peak growth: peak resident memory of a fresh JVM while the model loads, above its resident size just before.");
        return 0;
    }

    private static void report(PrintWriter out, String name, String stored, Path checkpoint) {
        LoadMemoryProbe.Result r = LoadMemoryProbe.measure(checkpoint)
                .orElseThrow(() -> new HfpruneException("bench load needs Linux's /proc/self/status and /proc/self/clear_refs"));
        out.printf("%-40s %6s %7.2f GB %10.2f GB %9.2f GB %6.2f%n", name, stored, fileBytes(checkpoint) / 1e9,
                r.float32Bytes() / 1e9, r.peakGrowthBytes() / 1e9, r.ratio());
        out.flush();
    }

    private static long fileBytes(Path checkpoint) {
        try (Stream<Path> files = Files.isDirectory(checkpoint) ? Files.list(checkpoint) : Stream.of(checkpoint)) {
            return files.mapToLong(f -> {
                try {
                    return Files.size(f);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }).sum();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
