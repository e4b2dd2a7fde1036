package ai.hfprune.cli;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.hfprune.engine.MklOverride;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.ScoringFlops;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.nn.LlamaModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks.",
        subcommands = {BenchCommand.Score.class, LoadBenchCommand.class, FidelityStudyCommand.class, PipelineBenchCommand.class,
            GenerateBenchCommand.class})
public class BenchCommand implements Runnable {

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    @Command(name = "score", mixinStandardHelpOptions = true,
            description = "Entropy-Taylor scoring throughput (forward + activation-gradient backward) on stories260K and on a "
                    + "compute-bound synthetic LLaMA, beside the engine's float32 matrix-product GFLOP/s.")
    static class Score implements Callable<Integer> {

        @Mixin
        ModelOption model;

        @Option(names = "--threads", split = ",", defaultValue = "1,2", description = "Intra-op thread counts (default: ${DEFAULT-VALUE}).")
        List<Integer> threads;

        @Option(names = "--seq-len", defaultValue = "256", description = "T (default: ${DEFAULT-VALUE}).")
        int seqLen;

        @Option(names = "--batch-windows", defaultValue = "8", description = "Windows per batch (default: ${DEFAULT-VALUE}).")
        int batchWindows;

        @Option(names = "--batches", defaultValue = "4", description = "Timed batches per run (default: ${DEFAULT-VALUE}).")
        int batches;

        @Option(names = "--synthetic-vocab", defaultValue = "4096", description = "Vocabulary of the synthetic model (default: ${DEFAULT-VALUE}).")
        int syntheticVocab;

        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            ModelConfig s = RandomModels.syntheticBenchConfig();
            ModelConfig synthetic = RandomModels.llama(syntheticVocab, s.hiddenSize(), s.intermediateSize(),
                    s.numHiddenLayers(), s.numAttentionHeads(), s.numKeyValueHeads());
            out.println(MklOverride.describe());
            out.printf("%-28s %7s %12s %10s %12s %7s %10s%n", "model", "threads", "tokens/s", "GFLOP/s", "matmul GFLOP/s", "ratio", "peak RSS");
            try (Checkpoint checkpoint = model.open()) {
                ai.djl.engine.Engine.getEngine("PyTorch"); // loads the native library before threads are set
                for (int n : threads) {
                    JniUtils.setNumThreads(n);
                    double matmul = matmulGflops();
                    run(out, checkpoint.name(), checkpoint.config(), checkpoint.weights(), n, matmul);
                    run(out, "synthetic-" + synthetic.hiddenSize() + "x" + synthetic.intermediateSize(), synthetic,
                            RandomModels.weights(synthetic, 1), n, matmul);
                }
            }
            out.printf("T=%d, %d windows per batch, %d timed batches after one warm-up; FLOPs = 2 x forward matrix products.%n",
                    seqLen, batchWindows, batches);
            return 0;
        }

        private void run(PrintWriter out, String name, ModelConfig config, TensorSource weights, int threads, double matmul) {
            try (LlamaModel llama = LlamaModel.load(config, weights, Device.cpu(), DataType.FLOAT32)) {
                ImportanceScorer scorer = new ImportanceScorer(llama);
                int[][] batch = randomWindows(config.vocabSize());
                scorer.score(batch, Set.of(Criterion.ENTROPY)); // warm-up
                long start = System.nanoTime();
                for (int i = 0; i < batches; i++) {
                    scorer.score(batch, Set.of(Criterion.ENTROPY));
                }
                double seconds = (System.nanoTime() - start) / 1e9;
                double tokens = (double) batches * batchWindows * seqLen;
                double gflops = batches * batchWindows * ScoringFlops.scoringPerWindow(config, seqLen) / seconds / 1e9;
                out.printf("%-28s %7d %12.0f %10.2f %14.2f %7.2f %7d MiB%n", name, threads, tokens / seconds, gflops, matmul,
                        gflops / matmul, peakRssMiB());
                out.flush();
            }
        }

        private int[][] randomWindows(int vocab) {
            SplittableRandom r = new SplittableRandom(42);
            int[][] w = new int[batchWindows][seqLen];
            for (int[] window : w) {
                for (int t = 0; t < seqLen; t++) {
                    window[t] = r.nextInt(vocab);
                }
            }
            return w;
        }

        /** Float32 GFLOP/s of a 1024×1024 by 1024×1024 product on the engine, best of a few. */
        static double matmulGflops() {
            int n = 1024;
            try (NDManager m = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
                NDArray a = m.randomNormal(new Shape(n, n));
                NDArray b = m.randomNormal(new Shape(n, n));
                a.matMul(b).close();
                double best = Double.MAX_VALUE;
                for (int i = 0; i < 5; i++) {
                    long start = System.nanoTime();
                    NDArray c = a.matMul(b);
                    c.toFloatArray(); // forces completion
                    best = Math.min(best, (System.nanoTime() - start) / 1e9);
                    c.close();
                }
                return 2.0 * n * n * n / best / 1e9;
            }
        }

        static long peakRssMiB() {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                    if (line.startsWith("VmHWM:")) {
                        return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
                    }
                }
            } catch (IOException | NumberFormatException ignored) {
                // not Linux: report 0
            }
            return 0;
        }
    }
}
