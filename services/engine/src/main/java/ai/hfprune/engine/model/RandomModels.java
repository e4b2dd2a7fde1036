package ai.hfprune.engine.model;

import ai.hfprune.engine.io.MapTensorSource;

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
        int hd = c.headDim();
        int q = c.numAttentionHeads() * hd;
        int kv = c.numKeyValueHeads() * hd;
        matrix(s, random, "model.embed_tokens.weight", c.vocabSize(), c.hiddenSize(), 1.0);
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            norm(s, random, p + "input_layernorm.weight", c.hiddenSize());
            matrix(s, random, p + "self_attn.q_proj.weight", q, c.hiddenSize(), 1 / Math.sqrt(c.hiddenSize()));
            matrix(s, random, p + "self_attn.k_proj.weight", kv, c.hiddenSize(), 1 / Math.sqrt(c.hiddenSize()));
            matrix(s, random, p + "self_attn.v_proj.weight", kv, c.hiddenSize(), 1 / Math.sqrt(c.hiddenSize()));
            matrix(s, random, p + "self_attn.o_proj.weight", c.hiddenSize(), q, 1 / Math.sqrt(q));
            if (c.attentionBias()) {
                vector(s, random, p + "self_attn.q_proj.bias", q, 0.0, 0.02);
                vector(s, random, p + "self_attn.k_proj.bias", kv, 0.0, 0.02);
                vector(s, random, p + "self_attn.v_proj.bias", kv, 0.0, 0.02);
            }
            if (c.qkNorm()) {
                norm(s, random, p + "self_attn.q_norm.weight", hd);
                norm(s, random, p + "self_attn.k_norm.weight", hd);
            }
            norm(s, random, p + "post_attention_layernorm.weight", c.hiddenSize());
            matrix(s, random, p + "mlp.gate_proj.weight", c.intermediateSize(), c.hiddenSize(), 1 / Math.sqrt(c.hiddenSize()));
            matrix(s, random, p + "mlp.up_proj.weight", c.intermediateSize(), c.hiddenSize(), 1 / Math.sqrt(c.hiddenSize()));
            matrix(s, random, p + "mlp.down_proj.weight", c.hiddenSize(), c.intermediateSize(), 1 / Math.sqrt(c.intermediateSize()));
        }
        norm(s, random, "model.norm.weight", c.hiddenSize());
        if (!c.tieWordEmbeddings()) {
            matrix(s, random, "lm_head.weight", c.vocabSize(), c.hiddenSize(), 1 / Math.sqrt(c.hiddenSize()));
        }
        return s;
    }

    private static void matrix(MapTensorSource s, SplittableRandom r, String name, int rows, int cols, double std) {
        s.put(name, new long[] {rows, cols}, gaussian(r, (long) rows * cols, 0.0, std));
    }

    private static void norm(MapTensorSource s, SplittableRandom r, String name, int n) {
        vector(s, r, name, n, 1.0, 0.1);
    }

    private static void vector(MapTensorSource s, SplittableRandom r, String name, int n, double mean, double std) {
        s.put(name, new long[] {n}, gaussian(r, n, mean, std));
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
