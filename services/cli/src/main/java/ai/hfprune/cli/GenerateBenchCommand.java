package ai.hfprune.cli;

import ai.djl.pytorch.jni.JniUtils;
import ai.hfprune.engine.MallocTuning;
import ai.hfprune.engine.MklOverride;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.GreedyDecoder;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * Greedy generation speed once the model is loaded, with the KV cache and by recomputing the whole sequence at every
 * step (as generate did before the cache), in one run: the wall time of each generation and the CPU time of the whole
 * process during it (PyTorch's threads included), median and best of a few repetitions.
 */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Greedy generation speed once loaded: with the KV cache and by recomputing the sequence at every step.")
class GenerateBenchCommand implements Callable<Integer> {

    @Option(names = "--model", paramLabel = "MODEL", description = "GGUF file or Hugging Face directory (default: stories3M from the assets folder).")
    Path model;

    @Option(names = "--prompt", defaultValue = "Once upon a time", description = "The prompt after BOS (default: ${DEFAULT-VALUE}).")
    String prompt;

    @Option(names = "--tokens", defaultValue = "200", description = "New tokens per generation; EOS does not stop it (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--repeats", defaultValue = "3", description = "Timed generations per row, after one warm-up (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--threads", split = ",", defaultValue = "1,2", description = "Intra-op thread counts (default: ${DEFAULT-VALUE}).")
    List<Integer> threads;

    @Option(names = "--modes", split = ",", defaultValue = "CACHED,RECOMPUTE", description = "CACHED, RECOMPUTE (default: ${DEFAULT-VALUE}).")
    List<GreedyDecoder.Mode> modes;

    @Option(names = "--profile", paramLabel = "FILE",
            description = "Also run one generation per mode under libtorch's profiler, write its Chrome trace to FILE-MODE.json "
                    + "and print the top-level operator calls per new token.")
    Path profile;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (tokens < 1 || repeats < 1) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--tokens and --repeats must be at least 1");
        }
        Path profileDir = profile == null ? null : profile.toAbsolutePath().getParent();
        if (profileDir != null && !java.nio.file.Files.isDirectory(profileDir)) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--profile: no folder " + profileDir);
        }
        PrintWriter out = spec.commandLine().getOut();
        Path path = model != null ? model : Assets.resolve("models/stories3M/stories3M.gguf");
        try (Checkpoint checkpoint = Checkpoint.open(path); LlamaModel llama = checkpoint.load()) {
            Tokenizer tokenizer = checkpoint.tokenizer();
            int[] promptIds = tokenizer.encode(prompt);
            int[] prefix = new int[1 + promptIds.length];
            prefix[0] = tokenizer.bosId();
            System.arraycopy(promptIds, 0, prefix, 1, promptIds.length);
            int limit = Math.min(prefix.length + tokens, llama.config().maxPositionEmbeddings());
            out.println(MklOverride.describe());
            out.println(MallocTuning.describe());
            out.printf("%s: %d new tokens after BOS + \"%s\" (%d tokens), %d timed generations per row after one warm-up%n",
                    checkpoint.name(), limit - prefix.length, prompt, prefix.length, repeats);
            out.printf("%-10s %7s %12s %10s %12s %12s%n", "mode", "threads", "median wall", "best wall", "tokens/s", "CPU s");
            for (int n : threads) {
                JniUtils.setNumThreads(n);
                for (GreedyDecoder.Mode mode : modes) {
                    GreedyDecoder.generate(llama, prefix, limit, -1, mode, t -> { }); // warm-up
                    double[] wall = new double[repeats];
                    double[] cpu = new double[repeats];
                    for (int r = 0; r < repeats; r++) {
                        long cpuStart = processCpuNanos();
                        long start = System.nanoTime();
                        GreedyDecoder.generate(llama, prefix, limit, -1, mode, t -> { });
                        wall[r] = (System.nanoTime() - start) / 1e9;
                        cpu[r] = (processCpuNanos() - cpuStart) / 1e9;
                    }
                    Arrays.sort(wall);
                    Arrays.sort(cpu);
                    double median = wall[repeats / 2];
                    out.printf("%-10s %7d %10.3f s %8.3f s %12.1f %10.3f s%n", mode.name().toLowerCase(), n, median, wall[0],
                            (limit - prefix.length) / median, cpu[repeats / 2]);
                    if (profile != null) {
                        Path trace = profile.resolveSibling(profile.getFileName() + "-" + mode.name().toLowerCase() + ".json");
                        long calls = OperatorTrace.count(trace,
                                () -> GreedyDecoder.generate(llama, prefix, limit, -1, mode, t -> { }));
                        out.printf("%-10s %7d operator calls per new token: %.1f (libtorch's profiler, %s)%n",
                                mode.name().toLowerCase(), n, (double) calls / (limit - prefix.length), trace);
                    }
                    out.flush();
                }
            }
            out.println("wall: one whole generation (prompt included), the model already loaded; CPU s: the process's "
                    + "CPU time during it (median), all threads.");
        }
        return 0;
    }

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }
}
