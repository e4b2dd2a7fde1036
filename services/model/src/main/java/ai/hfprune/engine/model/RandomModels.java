package ai.hfprune.engine.model;

import ai.hfprune.engine.io.MapTensorSource;
import ai.hfprune.engine.io.SafetensorsSource.Dtype;
import ai.hfprune.engine.io.SafetensorsWriter;
import ai.hfprune.engine.io.SafetensorsWriter.Tensor;
import ai.hfprune.engine.io.TensorSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Random LLaMA-family weights for a given configuration: for benchmarks (compute-bound synthetic shapes)
 * and for tests that need models of a kind no asset provides.
 */
public final class RandomModels {
    private RandomModels() {
    }

    /** The synthetic configuration of {@code hfprune bench score}. */
    public static ModelConfig syntheticBenchConfig() {
        return llama(32000, 512, 1408, 8, 8, 4);
    }

    public static ModelConfig llama(int vocab, int hidden, int intermediate, int layers, int heads, int kvHeads) {
        return new ModelConfig("LlamaForCausalLM", vocab, hidden, intermediate, layers, heads, kvHeads, hidden / heads,
                1e-5, 10000.0, 4096, false, false, false, RopeStyle.HALF, 1, 2);
    }

    /**
     * Weights ~ N(0, (1/sqrt(fan_in))²) so activations keep their scale through depth; norms 1 + N(0, 0.1²);
     * biases N(0, 0.02²) where the architecture has them.
     */
    public static MapTensorSource weights(ModelConfig c, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        MapTensorSource s = new MapTensorSource();
        for (Spec t : specs(c)) {
            s.put(t.name(), t.shape(), gaussian(random, t.numel(), t.mean(), t.std()));
        }
        return s;
    }

    /**
     * Writes random weights of the same distributions as a Hugging Face checkpoint ({@code config.json} and safetensors
     * in {@code dtype}, sharded at {@code maxShardBytes}) into {@code dir}, generating one tensor at a time, so a model
     * larger than memory can be written (for {@code hfprune bench load} and memory tests).
     */
    public static void writeHuggingFace(ModelConfig c, long seed, Dtype dtype, long maxShardBytes, Path dir) {
        HfConfigs.write(c, dir);
        SplittableRandom random = new SplittableRandom(seed);
        List<Tensor> tensors = new ArrayList<>();
        for (Spec t : specs(c)) {
            SplittableRandom own = random.split(); // split in order, so each tensor's values depend only on the seed
            tensors.add(new Tensor(t.name(), t.shape(), () -> gaussian(own, t.numel(), t.mean(), t.std())));
        }
        SafetensorsWriter.write(dir, tensors, dtype, maxShardBytes);
    }

    /**
     * Random weights of the same means and standard deviations as {@link #weights}, generated row by row when they are
     * read, so that a model of a real size (a billion parameters) is built in memory without a file and without a
     * second copy in Java: for {@code hfprune bench score --shape}. Values are uniform (cheaper to draw than normal);
     * only the shapes and scales matter for timing and memory.
     */
    public static TensorSource generated(ModelConfig c, long seed) {
        return new GeneratedWeights(specs(c), seed);
    }

    /** The names {@link #shape} knows, in the order they are listed in errors. */
    public static final List<String> SHAPES = List.of("tinyllama-1.1b", "llama-3.2-1b");

    /**
     * The configuration of a published model's shape (as its config.json gives it; RoPE scaling is left out, it does
     * not change the cost): {@code tinyllama-1.1b} (TinyLlama-1.1B: hidden 2048, intermediate 5632, 22 layers, 32
     * heads over 4 KV heads, vocabulary 32000) or {@code llama-3.2-1b} (hidden 2048, intermediate 8192, 16 layers,
     * 32 heads over 8, vocabulary 128256, tied embeddings).
     */
    public static ModelConfig shape(String name) {
        return switch (name.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "tinyllama-1.1b" -> new ModelConfig("LlamaForCausalLM", 32000, 2048, 5632, 22, 32, 4, 64,
                    1e-5, 10000.0, 2048, false, false, false, RopeStyle.HALF, 1, 2);
            case "llama-3.2-1b" -> new ModelConfig("LlamaForCausalLM", 128256, 2048, 8192, 16, 32, 8, 64,
                    1e-5, 500000.0, 131072, true, false, false, RopeStyle.HALF, 128000, 128001);
            default -> throw new ai.hfprune.engine.HfpruneException("unknown shape '" + name + "' (choose one of "
                    + String.join(", ", SHAPES) + ")");
        };
    }

    /** One weight tensor: its name, shape and the normal distribution its values are drawn from. */
    record Spec(String name, long[] shape, double mean, double std) {
        long numel() {
            return Arrays.stream(shape).reduce(1, Math::multiplyExact);
        }
    }

    private static List<Spec> specs(ModelConfig c) {
        List<Spec> s = new ArrayList<>();
        int hd = c.headDim();
        int q = c.numAttentionHeads() * hd;
        int kv = c.numKeyValueHeads() * hd;
        int h = c.hiddenSize();
        matrix(s, "model.embed_tokens.weight", c.vocabSize(), h, 1.0);
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            norm(s, p + "input_layernorm.weight", h);
            matrix(s, p + "self_attn.q_proj.weight", q, h, 1 / Math.sqrt(h));
            matrix(s, p + "self_attn.k_proj.weight", kv, h, 1 / Math.sqrt(h));
            matrix(s, p + "self_attn.v_proj.weight", kv, h, 1 / Math.sqrt(h));
            matrix(s, p + "self_attn.o_proj.weight", h, q, 1 / Math.sqrt(q));
            if (c.attentionBias()) {
                s.add(new Spec(p + "self_attn.q_proj.bias", new long[] {q}, 0.0, 0.02));
                s.add(new Spec(p + "self_attn.k_proj.bias", new long[] {kv}, 0.0, 0.02));
                s.add(new Spec(p + "self_attn.v_proj.bias", new long[] {kv}, 0.0, 0.02));
            }
            if (c.qkNorm()) {
                norm(s, p + "self_attn.q_norm.weight", hd);
                norm(s, p + "self_attn.k_norm.weight", hd);
            }
            norm(s, p + "post_attention_layernorm.weight", h);
            matrix(s, p + "mlp.gate_proj.weight", c.intermediateSize(), h, 1 / Math.sqrt(h));
            matrix(s, p + "mlp.up_proj.weight", c.intermediateSize(), h, 1 / Math.sqrt(h));
            matrix(s, p + "mlp.down_proj.weight", h, c.intermediateSize(), 1 / Math.sqrt(c.intermediateSize()));
        }
        norm(s, "model.norm.weight", h);
        if (!c.tieWordEmbeddings()) {
            matrix(s, "lm_head.weight", c.vocabSize(), h, 1 / Math.sqrt(h));
        }
        return s;
    }

    private static void matrix(List<Spec> s, String name, int rows, int cols, double std) {
        s.add(new Spec(name, new long[] {rows, cols}, 0.0, std));
    }

    private static void norm(List<Spec> s, String name, int n) {
        s.add(new Spec(name, new long[] {n}, 1.0, 0.1));
    }

    private static float[] gaussian(SplittableRandom r, long n, double mean, double std) {
        float[] out = new float[Math.toIntExact(n)];
        for (int i = 0; i < out.length; i++) {
            // Box–Muller: SplittableRandom has no nextGaussian on Java 17
            double u = 1.0 - r.nextDouble();
            double v = r.nextDouble();
            out[i] = (float) (mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
        }
        return out;
    }
}
