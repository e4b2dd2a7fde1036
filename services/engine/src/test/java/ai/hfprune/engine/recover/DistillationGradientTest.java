package ai.hfprune.engine.recover;

import ai.hfprune.engine.nn.TokenArrays;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.optimizer.Optimizer;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.GradientLock;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The distillation loss is KL(teacher ‖ student) averaged over positions, and the gradients recovery trains with
 * (one backward pass through the student) are its derivatives: against central finite differences of the loss
 * computed by forward passes only, in float64, for weights of every kind and for LoRA's A and B.
 */
@ExtendWith(OneThread.class)
class DistillationGradientTest {

    private static final double EPS = 1e-5;
    private static final double RELATIVE = 1e-6;

    @ParameterizedTest
    @ValueSource(strings = {"Qwen2ForCausalLM", "Qwen3ForCausalLM"})
    void lossIsTheMeanKlOfTheTwoDistributions(String architecture) {
        try (TinyDistillation tiny = new TinyDistillation(architecture, 7); Adaptation student = tiny.adaptation(0);
             NDManager t = tiny.teacher.manager().newSubManager(); NDManager s = student.model().manager().newSubManager()) {
            int[][] windows = TinyDistillation.windows(37, 3, 6, 5);
            NDArray teacherLogits = tiny.teacher.forward(TokenArrays.ids(t, windows), ActivationTap.NONE);
            NDArray studentLogits = student.logits(TokenArrays.ids(s, windows));
            double expected = javaKl(teacherLogits.toDoubleArray(), studentLogits.toDoubleArray(), 37);
            assertTrue(expected > 0.01, "the pruned student differs from its teacher: " + expected);
            assertEquals(expected, TokenArrays.scalar(DistillationLoss.of(studentLogits, teacherLogits)), 1e-12);
            assertEquals(0, TokenArrays.scalar(DistillationLoss.of(teacherLogits, teacherLogits)), 1e-12);
            assertEquals(expected, HeldOutKl.of(tiny.live(windows), student, 2), 1e-12, "over two batches");
            try (TeacherTargets cached = TeacherTargets.of(tiny.teacher, windows, 2, Long.MAX_VALUE)) {
                assertTrue(cached.isCached());
                assertEquals(expected, HeldOutKl.of(cached, student, 2), 1e-12, "from cached log-probabilities");
            }
            try (ClosableAdam adam = new ClosableAdam(Optimizer.adam())) {
                synchronized (GradientLock.LOCK) {
                    DistillationTrainer trainer = new DistillationTrainer(tiny.live(windows), student, adam);
                    assertEquals(expected, trainer.backward(TinyDistillation.all(3)), 1e-12);
                    InPlace.zeroGradients(student);
                }
            }
        }
    }

    /** (1/N) Σ_positions Σ_v p_t (log p_t − log p_s), with log-softmax by log-sum-exp. */
    private static double javaKl(double[] teacher, double[] student, int vocab) {
        int positions = teacher.length / vocab;
        double sum = 0;
        for (int p = 0; p < positions; p++) {
            double zt = logSumExp(teacher, p * vocab, vocab);
            double zs = logSumExp(student, p * vocab, vocab);
            for (int v = 0; v < vocab; v++) {
                double lt = teacher[p * vocab + v] - zt;
                double ls = student[p * vocab + v] - zs;
                sum += Math.exp(lt) * (lt - ls);
            }
        }
        return sum / positions;
    }

    private static double logSumExp(double[] x, int from, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = from; i < from + n; i++) {
            max = Math.max(max, x[i]);
        }
        double s = 0;
        for (int i = from; i < from + n; i++) {
            s += Math.exp(x[i] - max);
        }
        return max + Math.log(s);
    }

    @ParameterizedTest
    @ValueSource(strings = {"Qwen2ForCausalLM", "Qwen3ForCausalLM"})
    void fullFineTuningGradientsMatchFiniteDifferences(String architecture) {
        boolean qwen3 = architecture.equals("Qwen3ForCausalLM");
        List<String> names = new ArrayList<>(List.of("model.embed_tokens.weight", // tied to lm_head for Qwen3
                "model.layers.0.input_layernorm.weight", "model.layers.0.self_attn.q_proj.weight",
                "model.layers.1.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight",
                "model.layers.1.self_attn.o_proj.weight", "model.layers.1.post_attention_layernorm.weight",
                "model.layers.0.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight",
                "model.layers.0.mlp.down_proj.weight", "model.norm.weight"));
        names.addAll(qwen3 ? List.of("model.layers.1.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight")
                : List.of("lm_head.weight", "model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.v_proj.bias"));
        try (TinyDistillation tiny = new TinyDistillation(architecture, 7); Adaptation student = tiny.adaptation(0)) {
            assertEquals(!qwen3, student.parameters().containsKey("lm_head.weight"), "tied embeddings are one parameter");
            checkGradients(tiny, student, names);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"Qwen2ForCausalLM", "Qwen3ForCausalLM"})
    void loraGradientsMatchFiniteDifferences(String architecture) {
        try (TinyDistillation tiny = new TinyDistillation(architecture, 7);
             LoraAdapters student = (LoraAdapters) tiny.adaptation(3)) {
            // B starts at zero, where ∂L/∂A is zero too: random B first, so both checks have something to check
            SplittableRandom r = new SplittableRandom(9);
            for (String target : LoraAdapters.TARGETS) {
                for (int l = 0; l < 2; l++) {
                    NDArray b = student.adapter(l, target)[1];
                    for (long i = 0; i < b.size(); i++) {
                        InPlace.set(b, i, 0.2 * (r.nextDouble() - 0.5));
                    }
                }
            }
            assertEquals(2 * 2 * LoraAdapters.TARGETS.size(), student.parameters().size(), "only A and B train");
            checkGradients(tiny, student, List.of(
                    "model.layers.0.self_attn.q_proj.weight.lora_A", "model.layers.1.self_attn.k_proj.weight.lora_B",
                    "model.layers.0.self_attn.v_proj.weight.lora_A", "model.layers.1.self_attn.o_proj.weight.lora_B",
                    "model.layers.1.mlp.gate_proj.weight.lora_A", "model.layers.0.mlp.up_proj.weight.lora_B",
                    "model.layers.0.mlp.down_proj.weight.lora_A", "model.layers.1.mlp.down_proj.weight.lora_B"));
        }
    }

    /** For each named parameter: its largest-gradient element and two random ones, against finite differences. */
    private static void checkGradients(TinyDistillation tiny, Adaptation student, List<String> names) {
        TeacherTargets batch = tiny.live(TinyDistillation.windows(37, 2, 5, 3));
        List<double[]> gradients = new ArrayList<>();
        try (ClosableAdam adam = new ClosableAdam(Optimizer.adam())) {
            synchronized (GradientLock.LOCK) {
                new DistillationTrainer(batch, student, adam).backward(TinyDistillation.all(2));
                for (String name : names) {
                    try (NDArray g = student.parameters().get(name).getGradient()) {
                        gradients.add(g.toDoubleArray());
                    }
                }
                InPlace.zeroGradients(student);
            }
        }
        SplittableRandom r = new SplittableRandom(1);
        for (int n = 0; n < names.size(); n++) {
            double[] g = gradients.get(n);
            NDArray p = student.parameters().get(names.get(n));
            int largest = 0;
            for (int i = 1; i < g.length; i++) {
                largest = Math.abs(g[i]) > Math.abs(g[largest]) ? i : largest;
            }
            assertTrue(Math.abs(g[largest]) > 1e-6, names.get(n) + ": the gradient is all zero, the check proves nothing");
            for (int i : new int[] {largest, r.nextInt(g.length), r.nextInt(g.length)}) {
                double w = p.toDoubleArray()[i];
                InPlace.set(p, i, w + EPS);
                double plus = HeldOutKl.of(batch, student, 2);
                InPlace.set(p, i, w - EPS);
                double minus = HeldOutKl.of(batch, student, 2);
                InPlace.set(p, i, w);
                double fd = (plus - minus) / (2 * EPS);
                // relative to the element's own gradient, or to the tensor's largest for elements near zero
                double scale = Math.max(Math.abs(g[i]), 1e-3 * Math.abs(g[largest]));
                assertEquals(fd, g[i], RELATIVE * scale, names.get(n) + "[" + i + "]");
            }
        }
    }
}
