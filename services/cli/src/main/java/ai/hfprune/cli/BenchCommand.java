package ai.hfprune.cli;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.MallocTuning;
import ai.hfprune.engine.MklOverride;
import ai.hfprune.engine.ProcessMemory;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.importance.ScoringPrecision;
import ai.hfprune.engine.importance.ScoringFlops;
import ai.hfprune.engine.importance.ScoringMemory;
import ai.hfprune.engine.importance.StoreMemoryEstimate;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.prune.ParameterCount;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks.",
        subcommands = {BenchCommand.Score.class, LoadBenchCommand.class, FidelityStudyCommand.class, PipelineBenchCommand.class,
            GenerateBenchCommand.class, ai.hfprune.cli.chaos.ChaosCommand.class})
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

        @Option(names = "--shape", paramLabel = "NAME",
                description = "Score only a random-weight model of a real shape, built in memory: tinyllama-1.1b or llama-3.2-1b.")
        String shape;

        @Option(names = "--layers", defaultValue = "0",
                description = "With --shape: this many decoder layers instead of the shape's own (0: the shape's; for quick runs).")
        int layers;

        @Option(names = "--memory", split = ",", defaultValue = "auto",
                description = "Scoring memory modes to run, in this order: auto, recompute, store (default: ${DEFAULT-VALUE}, "
                        + "shown with the mode it chose); with recompute and store, the time per token of each against store "
                        + "is printed.")
        List<String> memory;

        @Option(names = "--dtype", split = ",", defaultValue = "float32",
                description = "Types to compute the layers in, in this order: float32, bf16 (default: ${DEFAULT-VALUE}); "
                        + "with both, each layer's L1 relative error of bf16's entropy scores against float32's is printed.")
        List<String> dtypes;

        @Option(names = "--profile", paramLabel = "FILE",
                description = "After each row, score one more batch under libtorch's profiler, write its Chrome trace to "
                        + "FILE-MODEL-MEMORY[-bf16]-THREADSt.json and print the operators that took the most time.")
        Path profile;

        @Option(names = "--warmup", defaultValue = "1", description = "Untimed batches before the timed ones (default: ${DEFAULT-VALUE}).")
        int warmup;

        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            List<ScoringMemory> modes = memory.stream().map(ScoringMemory::parse).toList();
            List<ScoringPrecision> precisions = dtypes.stream().map(ScoringOptions::precision).toList();
            if (seqLen < 2 || batchWindows < 1 || batches < 1 || warmup < 0) {
                throw new HfpruneException("--seq-len must be at least 2, --batch-windows and --batches at least 1, "
                        + "--warmup at least 0");
            }
            Path profileDir = profile == null ? null : profile.toAbsolutePath().getParent();
            if (profileDir != null && !java.nio.file.Files.isDirectory(profileDir)) {
                throw new HfpruneException("--profile: no folder " + profileDir);
            }
            ModelConfig shapeConfig = shape == null ? null : withLayers(RandomModels.shape(shape));
            CpuPeak peak = CpuPeak.measure();
            out.println(MklOverride.describe());
            out.println(MallocTuning.describe());
            out.println("CPU peak estimate: " + peak.describe());
            out.printf("%-28s %19s %7s %10s %9s %12s %9s %10s %8s %12s %11s %8s%n", "model", "memory", "threads", "tokens/s",
                    "GFLOP/s", "best sgemm", "of sgemm", "CPU peak", "of peak", "peak RSS", "f32 weights", "RSS/f32");
            ai.djl.engine.Engine.getEngine("PyTorch"); // loads the native library before threads are set
            if (shapeConfig != null) {
                String name = shape + (layers > 0 ? "-" + layers + "layers" : "");
                runAll(out, name, shapeConfig, RandomModels.generated(shapeConfig, 1), modes, precisions, peak);
            } else {
                ModelConfig s = RandomModels.syntheticBenchConfig();
                ModelConfig synthetic = RandomModels.llama(syntheticVocab, s.hiddenSize(), s.intermediateSize(),
                        s.numHiddenLayers(), s.numAttentionHeads(), s.numKeyValueHeads());
                try (Checkpoint checkpoint = model.open()) {
                    runAll(out, checkpoint.name(), checkpoint.config(), checkpoint.weights(), modes, precisions, peak);
                    runAll(out, "synthetic-" + synthetic.hiddenSize() + "x" + synthetic.intermediateSize(), synthetic,
                            RandomModels.weights(synthetic, 1), modes, precisions, peak);
                }
            }
            out.printf("T=%d, %d windows per batch, %d timed batches after %d warm-up; FLOPs: the matrix products of the forward "
                    + "pass and those of the backward pass scoring needs (ScoringFlops; the same count in both memory modes); "
                    + "best sgemm: the fastest float32 n x n x n product of n = 1024, 2048 on the engine, the better of those just before "
                    + "and just after the row; CPU peak: threads x the estimate above; peak RSS: VmHWM, of the whole process for the first "
                    + "row, since the row's start for later rows (the model stays loaded); f32 weights: parameters x 4 bytes.%n",
                    seqLen, batchWindows, batches, warmup);
            return 0;
        }

        private ModelConfig withLayers(ModelConfig c) {
            if (layers < 0) {
                throw new HfpruneException("--layers must be 0 (the shape's own) or positive, got " + layers);
            }
            return layers == 0 ? c : new ModelConfig(c.architecture(), c.vocabSize(), c.hiddenSize(), c.intermediateSize(),
                    layers, c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.rmsNormEps(), c.ropeTheta(),
                    c.maxPositionEmbeddings(), c.tieWordEmbeddings(), c.attentionBias(), c.qkNorm(), c.ropeStyle(),
                    c.bosTokenId(), c.eosTokenId());
        }

        /** Loads the model once and scores it at every thread count in every memory mode. */
        private void runAll(PrintWriter out, String name, ModelConfig config, TensorSource weights, List<ScoringMemory> modes,
                            List<ScoringPrecision> precisions, CpuPeak peak) {
            long f32Bytes = 4 * ParameterCount.of(weights);
            boolean first = true;
            try (LlamaModel llama = LlamaModel.load(config, weights, Device.cpu(), DataType.FLOAT32)) {
                for (int n : threads) {
                    JniUtils.setNumThreads(n);
                    // each row's ceiling is the better of the products measured just before and just after it: the
                    // clock of a shared machine drifts, and a ceiling measured apart from the row says less of it
                    double matmulBefore = matmulGflops();
                    double cpu = peak.gflops(n);
                    Map<ScoringMemory, Double> secondsPerToken = new EnumMap<>(ScoringMemory.class);
                    for (ScoringPrecision precision : precisions) {
                        for (ScoringMemory mode : modes) {
                            if (!first) {
                                ProcessMemory.resetPeak();
                            }
                            first = false;
                            ImportanceScorer scorer = new ImportanceScorer(llama, mode, precision);
                            String label = label(scorer) + (precision == ScoringPrecision.BF16 ? " bf16" : "");
                            double seconds = time(scorer, config.vocabSize());
                            double matmulAfter = matmulGflops();
                            double matmul = Math.max(matmulBefore, matmulAfter);
                            matmulBefore = matmulAfter;
                            double tokens = (double) batches * batchWindows * seqLen;
                            if (precision == precisions.get(0)) {
                                secondsPerToken.put(mode, seconds / tokens);
                            }
                            double gflops = batches * batchWindows * ScoringFlops.scoringPerWindow(config, seqLen) / seconds / 1e9;
                            long rss = ProcessMemory.peakResidentBytes().orElse(0);
                            out.printf("%-28s %19s %7d %10.1f %9.2f %12.2f %9.2f %10.1f %8.2f %8d MiB %7d MiB %8.2f%n", name,
                                    label, n, tokens / seconds, gflops, matmul, gflops / matmul, cpu, gflops / cpu, rss >> 20,
                                    f32Bytes >> 20, (double) rss / f32Bytes);
                            if (profile != null) {
                                printProfile(out, profile.resolveSibling(profile.getFileName() + "-" + name + "-" + mode.id()
                                        + (precision == ScoringPrecision.BF16 ? "-bf16" : "") + "-" + n + "t.json"), scorer, config);
                            }
                            out.flush();
                        }
                    }
                    Double store = secondsPerToken.get(ScoringMemory.STORE);
                    Double recompute = secondsPerToken.get(ScoringMemory.RECOMPUTE);
                    if (store != null && recompute != null) {
                        out.printf("%-28s %7d threads: recompute's time per token / store's = %.3f%n", name, n, recompute / store);
                    }
                }
                if (precisions.size() > 1) {
                    printBf16Error(out, name, llama, modes.get(0));
                }
                OptionalLong available = StoreMemoryEstimate.availableBytes();
                out.printf("%-28s store's activations estimated at %d MiB a batch, %s available now: auto scores with %s%n",
                        name, StoreMemoryEstimate.bytes(llama, batchWindows, seqLen) >> 20,
                        available.isPresent() ? (available.getAsLong() >> 20) + " MiB" : "no memory figure",
                        new ImportanceScorer(llama).modeFor(batchWindows, seqLen).id());
            }
        }

        /** Per layer, the L1 relative error of one batch's bf16 entropy scores against float32's. */
        private void printBf16Error(PrintWriter out, String name, LlamaModel llama, ScoringMemory mode) {
            int[][] batch = randomWindows(llama.config().vocabSize());
            Partial f32 = new ImportanceScorer(llama, mode).score(batch, Set.of(Criterion.ENTROPY)).get(Criterion.ENTROPY);
            Partial bf16 = new ImportanceScorer(llama, mode, ScoringPrecision.BF16).score(batch, Set.of(Criterion.ENTROPY))
                    .get(Criterion.ENTROPY);
            StringBuilder mlp = new StringBuilder();
            StringBuilder heads = new StringBuilder();
            for (int l = 0; l < f32.mlp().length; l++) {
                mlp.append(String.format(" %.4f", relativeError(f32.mlp()[l], bf16.mlp()[l])));
                heads.append(String.format(" %.4f", relativeError(f32.heads()[l], bf16.heads()[l])));
            }
            out.printf("%-28s bf16 against float32, L1 relative error per layer of one batch's entropy scores:%n"
                    + "%-28s   neurons:%s%n%-28s   heads:  %s%n", name, "", mlp, "", heads);
        }

        private static double relativeError(double[] reference, double[] other) {
            double error = 0;
            double norm = 0;
            for (int i = 0; i < reference.length; i++) {
                error += Math.abs(other[i] - reference[i]);
                norm += Math.abs(reference[i]);
            }
            return error / norm;
        }

        /** The mode's name; for auto, with the mode it chose for this bench's batches. */
        private String label(ImportanceScorer scorer) {
            ScoringMemory chosen = scorer.modeFor(batchWindows, seqLen);
            return scorer.memory() == chosen ? chosen.id() : scorer.memory().id() + ":" + chosen.id();
        }

        /** Seconds for the timed batches, after the warm-up ones. */
        private double time(ImportanceScorer scorer, int vocab) {
            int[][] batch = randomWindows(vocab);
            for (int i = 0; i < warmup; i++) {
                scorer.score(batch, Set.of(Criterion.ENTROPY));
            }
            long start = System.nanoTime();
            for (int i = 0; i < batches; i++) {
                scorer.score(batch, Set.of(Criterion.ENTROPY));
            }
            return (System.nanoTime() - start) / 1e9;
        }

        /** One batch under the profiler: the operators with the most self time, and their share of all of it. */
        private void printProfile(PrintWriter out, Path trace, ImportanceScorer scorer, ModelConfig config) {
            int[][] batch = randomWindows(config.vocabSize());
            OperatorTrace.trace(trace, () -> scorer.score(batch, Set.of(Criterion.ENTROPY)));
            List<OperatorTrace.OperatorTime> ops = OperatorTrace.selfTimes(trace);
            double total = ops.stream().mapToDouble(OperatorTrace.OperatorTime::selfMillis).sum();
            out.printf("    one batch under libtorch's profiler (%s): %.1f ms of operator time; matrix products %.2f GFLOP "
                            + "(counted as scoring's: %.2f); by self time:%n", trace, total,
                    OperatorTrace.matrixProductFlops(trace) / 1e9, batchWindows * ScoringFlops.scoringPerWindow(config, seqLen) / 1e9);
            for (OperatorTrace.OperatorTime op : ops.subList(0, Math.min(15, ops.size()))) {
                out.printf("    %9.1f ms %5.1f%% %7d calls  %s%n", op.selfMillis(), 100 * op.selfMillis() / total, op.calls(), op.name());
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
         * The best float32 GFLOP/s of an n×n by n×n product on the engine, n = 1024 and 2048, best of ten each after a
         * warm-up: the engine's own ceiling for large products at the current thread count. Only the product is timed:
         * reading the whole result back into Java, as this once did, took up to 8% of the 2048³ product's time and so
         * understated the ceiling (and overstated every "of sgemm" ratio) by as much.
         */
        static double matmulGflops() {
            double best = 0;
            try (NDManager m = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
                for (int n : new int[] {1024, 2048}) {
                    NDArray a = m.randomNormal(new Shape(n, n));
                    NDArray b = m.randomNormal(new Shape(n, n));
                    a.matMul(b).close();
                    for (int i = 0; i < 10; i++) {
                        long start = System.nanoTime();
                        NDArray c = a.matMul(b);
                        c.get(0, 0).getFloat(); // one element: the product is done (libtorch's CPU operators return when they are)
                        best = Math.max(best, 2.0 * n * n * n / ((System.nanoTime() - start) / 1e9) / 1e9);
                        c.close();
                    }
                    a.close();
                    b.close();
                }
            }
            return best;
        }
    }
}
