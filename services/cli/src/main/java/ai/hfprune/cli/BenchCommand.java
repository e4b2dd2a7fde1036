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
                    + "compute-bound synthetic LLaMA, against the engine's best float32 matrix product and the CPU's estimated peak.")
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
            CpuPeak peak = CpuPeak.measure();
            out.println(MklOverride.describe());
            out.println("CPU peak estimate: " + peak.describe());
            out.printf("%-28s %7s %10s %9s %12s %9s %10s %8s %10s%n", "model", "threads", "tokens/s", "GFLOP/s", "best sgemm",
                    "of sgemm", "CPU peak", "of peak", "peak RSS");
            try (Checkpoint checkpoint = model.open()) {
                ai.djl.engine.Engine.getEngine("PyTorch"); // loads the native library before threads are set
                for (int n : threads) {
                    JniUtils.setNumThreads(n);
                    double matmul = matmulGflops();
                    double cpu = peak.gflops(n);
                    run(out, checkpoint.name(), checkpoint.config(), checkpoint.weights(), n, matmul, cpu);
                    run(out, "synthetic-" + synthetic.hiddenSize() + "x" + synthetic.intermediateSize(), synthetic,
                            RandomModels.weights(synthetic, 1), n, matmul, cpu);
                }
            }
            out.printf("T=%d, %d windows per batch, %d timed batches after one warm-up; FLOPs = 2 x forward matrix products; "
                    + "best sgemm: the fastest float32 n x n x n product of n = 1024, 2048 on the engine; CPU peak: threads x the "
                    + "estimate above.%n", seqLen, batchWindows, batches);
            return 0;
        }

        private void run(PrintWriter out, String name, ModelConfig config, TensorSource weights, int threads, double matmul,
                         double cpuPeak) {
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
                out.printf("%-28s %7d %10.0f %9.2f %12.2f %9.2f %10.1f %8.2f %6d MiB%n", name, threads, tokens / seconds, gflops,
                        matmul, gflops / matmul, cpuPeak, gflops / cpuPeak, peakRssMiB());
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

        /**
         * The best float32 GFLOP/s of an n×n by n×n product on the engine, n = 1024 and 2048, best of three each after a
         * warm-up: the engine's own ceiling for large products at the current thread count.
         */
        static double matmulGflops() {
            double best = 0;
            try (NDManager m = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
                for (int n : new int[] {1024, 2048}) {
                    NDArray a = m.randomNormal(new Shape(n, n));
                    NDArray b = m.randomNormal(new Shape(n, n));
                    a.matMul(b).close();
                    for (int i = 0; i < 3; i++) {
                        long start = System.nanoTime();
                        NDArray c = a.matMul(b);
                        c.toFloatArray(); // forces completion
                        best = Math.max(best, 2.0 * n * n * n / ((System.nanoTime() - start) / 1e9) / 1e9);
                        c.close();
                    }
                    a.close();
                    b.close();
                }
            }
            return best;
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
