package ai.hfprune.engine;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.importance.Criterion;
import ai.hfprune.engine.importance.ImportanceScorer;
import ai.hfprune.engine.importance.Partial;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.nn.LlamaModel;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The MKL vendor override changes which of MKL's kernels run, not what they compute: the same entropy scores of a
 * small random model, computed in two fresh JVMs, one with the library preloaded and one without, agree within float32
 * rounding. Also checks that {@link MklOverride#active} sees the preload (and its absence) in each child.
 */
class MklOverrideTest {

    private static final Path LIBRARY = Path.of("target/native", MklOverride.LIBRARY).toAbsolutePath();

    @Test
    void scoresAgreeWithAndWithoutTheOverride() throws Exception {
        assumeTrue(Files.isRegularFile(LIBRARY), "the build made no " + LIBRARY + " (no C compiler)");
        Child with = run(true);
        Child without = run(false);
        assertTrue(with.active(), "the preloaded library must show in the child's /proc/self/maps");
        assertFalse(without.active(), "without LD_PRELOAD the library must not be mapped");
        assertEquals(without.scores().length, with.scores().length);
        double maxAbs = Arrays.stream(without.scores()).map(Math::abs).max().orElseThrow();
        for (int i = 0; i < with.scores().length; i++) {
            // float32 sums over a few hundred tokens: agreement to 1e-4 of the largest score, far above bit-equality
            // and far below any difference in ranking that matters
            assertEquals(without.scores()[i], with.scores()[i], 1e-4 * maxAbs, "score " + i);
        }
    }

    private record Child(boolean active, double[] scores) {
    }

    private static Child run(boolean preload) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "-Xmx512m", "-Dai.djl.offline=true", "-Dai.djl.pytorch.num_threads=1",
                "-cp", System.getProperty("java.class.path"), Scoring.class.getName()));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().remove("LD_PRELOAD"); // the suite itself may run with the override: each child decides alone
        pb.environment().remove("HFPRUNE_MKL_OVERRIDE_STATE");
        pb.environment().remove("MKL_CBWR");
        if (preload) { // as infra/mkl-override.sh applies it
            pb.environment().put("LD_PRELOAD", LIBRARY.toString());
            pb.environment().put("MKL_CBWR", "AUTO,STRICT");
        }
        Process child = pb.start();
        String out = new String(child.getInputStream().readAllBytes());
        assertEquals(0, child.waitFor(), out);
        boolean active = out.lines().anyMatch("active=true"::equals);
        double[] scores = out.lines().filter(l -> l.startsWith("score ")).mapToDouble(l -> Double.parseDouble(l.substring(6)))
                .toArray();
        assertTrue(scores.length > 0, out);
        return new Child(active, scores);
    }

    /** The child: entropy scores of every MLP neuron and head of a random model, one per line. */
    public static final class Scoring {
        public static void main(String[] args) {
            // wide enough that the projections are MKL sgemm calls of real size (hidden 256, intermediate 704)
            ModelConfig config = RandomModels.llama(1024, 256, 704, 2, 4, 2);
            SplittableRandom r = new SplittableRandom(3);
            int[][] windows = new int[2][64];
            for (int[] w : windows) {
                Arrays.setAll(w, t -> r.nextInt(config.vocabSize()));
            }
            System.out.println("active=" + MklOverride.active());
            try (LlamaModel llama = LlamaModel.load(config, RandomModels.weights(config, 11), Device.cpu(), DataType.FLOAT32)) {
                Map<Criterion, Partial> p = new ImportanceScorer(llama).score(windows, Set.of(Criterion.ENTROPY));
                Partial entropy = p.get(Criterion.ENTROPY);
                for (double[][] part : new double[][][] {entropy.mlp(), entropy.heads()}) {
                    for (double[] layer : part) {
                        for (double s : layer) {
                            System.out.println("score " + s);
                        }
                    }
                }
            }
        }
    }
}
