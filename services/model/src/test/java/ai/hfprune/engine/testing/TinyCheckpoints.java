package ai.hfprune.engine.testing;

import ai.hfprune.engine.io.SafetensorsSource.Dtype;
import ai.hfprune.engine.io.SafetensorsWriter;
import ai.hfprune.engine.io.SafetensorsWriter.Tensor;
import ai.hfprune.engine.model.HfConfigs;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeStyle;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Tiny random Hugging Face checkpoints (config.json + safetensors) for tests: vocabulary 64, hidden 32,
 * intermediate 48, 2 layers, 4 query heads over 2 key/value heads, head_dim 8 (16 for Qwen3, which allows
 * head_dim != hidden / heads). Weights are N(0, 0.1²), norms 1 + N(0, 0.1²), all from one seeded Random.
 */
public final class TinyCheckpoints {
    private TinyCheckpoints() {
    }

    /** The tiny config for an architecture (Qwen3 ties its embeddings, like Qwen3-0.6B; the others do not). */
    public static ModelConfig tinyConfig(String architecture) {
        boolean qwen2 = architecture.equals("Qwen2ForCausalLM");
        boolean qwen3 = architecture.equals("Qwen3ForCausalLM");
        return new ModelConfig(architecture, 64, 32, 48, 2, 4, 2, qwen3 ? 16 : 8,
                1e-6, qwen2 || qwen3 ? 1_000_000.0 : 10_000.0, 128, qwen3,
                qwen2, qwen3, RopeStyle.HALF, 1, 2);
    }

    /**
     * Writes a random checkpoint of {@code architecture} into {@code dir} in {@code dtype} ("F32", "F16" or "BF16"),
     * sharded at {@code maxShardBytes} ({@link SafetensorsWriter#NO_SHARDING} for one file), and returns its config.
     */
    public static ModelConfig writeTinyRandom(Path dir, String architecture, long seed, String dtype, long maxShardBytes) {
        ModelConfig c = tinyConfig(architecture);
        HfConfigs.write(c, dir);
        SafetensorsWriter.write(dir, randomTensors(c, seed), Dtype.parse(dtype, "tiny checkpoint"), maxShardBytes);
        return c;
    }

    /** Random weights for {@code c}, in the order transformers saves them; the same seed gives the same values. */
    public static List<Tensor> randomTensors(ModelConfig c, long seed) {
        Random rnd = new Random(seed);
        int h = c.hiddenSize();
        int q = c.numAttentionHeads() * c.headDim();
        int kv = c.numKeyValueHeads() * c.headDim();
        int m = c.intermediateSize();
        List<Tensor> out = new ArrayList<>();
        out.add(gaussian(rnd, "model.embed_tokens.weight", c.vocabSize(), h));
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            out.add(norm(rnd, p + "input_layernorm.weight", h));
            out.add(gaussian(rnd, p + "mlp.down_proj.weight", h, m));
            out.add(gaussian(rnd, p + "mlp.gate_proj.weight", m, h));
            out.add(gaussian(rnd, p + "mlp.up_proj.weight", m, h));
            out.add(norm(rnd, p + "post_attention_layernorm.weight", h));
            out.add(gaussian(rnd, p + "self_attn.q_proj.weight", q, h));
            out.add(gaussian(rnd, p + "self_attn.k_proj.weight", kv, h));
            out.add(gaussian(rnd, p + "self_attn.v_proj.weight", kv, h));
            out.add(gaussian(rnd, p + "self_attn.o_proj.weight", h, q));
            if (c.attentionBias()) {
                out.add(gaussian(rnd, p + "self_attn.q_proj.bias", q));
                out.add(gaussian(rnd, p + "self_attn.k_proj.bias", kv));
                out.add(gaussian(rnd, p + "self_attn.v_proj.bias", kv));
            }
            if (c.qkNorm()) {
                out.add(norm(rnd, p + "self_attn.q_norm.weight", c.headDim()));
                out.add(norm(rnd, p + "self_attn.k_norm.weight", c.headDim()));
            }
        }
        out.add(norm(rnd, "model.norm.weight", h));
        if (!c.tieWordEmbeddings()) {
            out.add(gaussian(rnd, "lm_head.weight", c.vocabSize(), h));
        }
        return out;
    }

    private static Tensor gaussian(Random rnd, String name, long... shape) {
        float[] v = new float[(int) numel(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (0.1 * rnd.nextGaussian());
        }
        return Tensor.of(name, shape, v);
    }

    private static Tensor norm(Random rnd, String name, long size) {
        float[] v = new float[(int) size];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (1 + 0.1 * rnd.nextGaussian());
        }
        return Tensor.of(name, new long[] {size}, v);
    }

    private static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }
}
