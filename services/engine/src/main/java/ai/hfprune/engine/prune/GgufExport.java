package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufFile.GgmlType;
import ai.hfprune.engine.io.GgufTensorSource;
import ai.hfprune.engine.io.GgufValue;
import ai.hfprune.engine.io.GgufWriter;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.GgufConfigs;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeLayouts;
import ai.hfprune.engine.model.RopeScaling;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.model.SlidingWindow;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;

/**
 * Writes a pruned model as one GGUF file that llama.cpp loads. Uniform widths use architecture {@code llama}; per-layer
 * widths use {@code deci}, llama.cpp's LLaMA variant that reads feed-forward widths and head counts per layer (under
 * {@code llama} the arrays are read but every layer is sized by layer 0's). Q/K rows are stored in llama.cpp's
 * interleaved RoPE order, as its converter permutes them. The tokenizer comes from {@link GgufTokenizer}.
 */
public final class GgufExport {
    private GgufExport() {
    }

    public static final String FILE = "model.gguf";

    private static final Logger LOG = LoggerFactory.getLogger(GgufExport.class);

    /** Refuses, before any long work, an input whose pruned model could not be written as GGUF. */
    public static void checkSource(Checkpoint source) {
        ModelConfig c = source.config();
        if (c.qkNorm()) {
            throw new HfpruneException("--format gguf: " + c.architecture() + "'s per-head q/k norms have no place in"
                    + " llama.cpp's llama architecture; use --format hf");
        }
        if (c.attentionBias()) {
            throw new HfpruneException("--format gguf: " + c.architecture() + "'s q/k/v biases are not written to GGUF"
                    + " (llama.cpp's llama architecture sizes them by the hidden width); use --format hf");
        }
        GgufTokenizer.metadata(source); // refuses a tokenizer it cannot convert
    }

    /**
     * Refuses a plan llama.cpp's llama/deci architectures cannot run. A layer whose MLP or attention is empty would
     * load under deci but not compute the model: llama.cpp skips a layer of feed-forward width 0 whole, its attention
     * too.
     */
    public static void check(LayerWidths widths) {
        for (int l = 0; l < widths.numLayers(); l++) {
            if (widths.intermediateSize(l) == 0 || widths.numKeyValueHeads(l) == 0 || widths.numAttentionHeads(l) == 0) {
                throw new HfpruneException("--format gguf: layer " + l + " would keep " + widths.intermediateSize(l)
                        + " MLP neurons and " + widths.numKeyValueHeads(l) + " KV heads; llama.cpp cannot run a layer with an"
                        + " empty MLP or attention (lower the ratio or raise --min-keep)");
            }
        }
    }

    /** @param progress told the element count of each tensor as it is written */
    public static void write(Checkpoint source, PrunedModel model, GgmlType type, Path file, LongConsumer progress) {
        checkSource(source);
        check(model.widths());
        ModelConfig c = model.config();
        if (contextLength(c) < c.maxPositionEmbeddings()) {
            LOG.warn("model.gguf: llama.cpp has no sliding window for this architecture; its context_length is the"
                    + " window, {} tokens, not max_position_embeddings {}", contextLength(c), c.maxPositionEmbeddings());
        }
        Map<String, GgufValue> metadata = new LinkedHashMap<>(hyperparameters(source.name(), model, type));
        metadata.putAll(GgufTokenizer.metadata(source));
        GgufWriter.write(file, metadata, tensors(model.config(), model.weights(), type, progress));
    }

    /** general.* and the architecture's keys, computed from the pruned model (nothing copied from the input). */
    static Map<String, GgufValue> hyperparameters(String name, PrunedModel model, GgmlType type) {
        ModelConfig c = model.config();
        LayerWidths w = model.widths();
        boolean uniform = w.isUniform();
        String arch = architecture(w);
        String a = arch + ".";
        Map<String, GgufValue> m = new LinkedHashMap<>();
        m.put("general.architecture", GgufValue.string(arch));
        m.put("general.name", GgufValue.string(name + "-pruned"));
        m.put("general.file_type", GgufValue.u32(fileType(type)));
        if (type == GgmlType.Q8_0) {
            m.put("general.quantization_version", GgufValue.u32(2)); // ggml's current one, as llama.cpp's converter writes
        }
        m.put(a + "context_length", GgufValue.u32(contextLength(c)));
        m.put(a + "embedding_length", GgufValue.u32(c.hiddenSize()));
        m.put(a + "block_count", GgufValue.u32(c.numHiddenLayers()));
        if (uniform) {
            m.put(a + "feed_forward_length", GgufValue.u32(w.intermediateSize(0)));
            m.put(a + "attention.head_count", GgufValue.u32(w.numAttentionHeads(0)));
            m.put(a + "attention.head_count_kv", GgufValue.u32(w.numKeyValueHeads(0)));
        } else {
            m.put(a + "feed_forward_length", GgufValue.i32s(w.intermediateSizes()));
            m.put(a + "attention.head_count", GgufValue.i32s(w.numAttentionHeads()));
            m.put(a + "attention.head_count_kv", GgufValue.i32s(w.numKeyValueHeads()));
        }
        // Without these llama.cpp derives head_dim as embedding_length / head_count, wrong once heads are cut ("invalid
        // n_rot"); written always, they cost nothing.
        m.put(a + "attention.key_length", GgufValue.u32(c.headDim()));
        m.put(a + "attention.value_length", GgufValue.u32(c.headDim()));
        m.put(a + "rope.dimension_count", GgufValue.u32(c.headDim()));
        m.put(a + "rope.freq_base", GgufValue.f32(c.ropeTheta()));
        if (c.ropeScaling() instanceof RopeScaling.Linear linear) { // llama.cpp's names, as its converter writes them
            m.put(a + "rope.scaling.type", GgufValue.string("linear"));
            m.put(a + "rope.scaling.factor", GgufValue.f32(linear.factor()));
        }
        m.put(a + "attention.layer_norm_rms_epsilon", GgufValue.f32(c.rmsNormEps()));
        return m;
    }

    /**
     * The context length llama.cpp is told it was trained for. llama.cpp's llama architecture has no sliding window: it
     * computes what the model computes only while every key is inside the window, so a model with a window shorter
     * than its context gets the window as its context (llama.cpp's default context size; it warns when asked for
     * more) rather than a file that silently attends past the window.
     */
    static int contextLength(ModelConfig c) {
        SlidingWindow w = c.slidingWindow();
        return w.isActive() ? Math.min(w.size(), c.maxPositionEmbeddings()) : c.maxPositionEmbeddings();
    }

    /** {@code llama} for uniform widths, {@code deci} (per-layer arrays) otherwise. */
    public static String architecture(LayerWidths widths) {
        return widths.isUniform() ? "llama" : "deci";
    }

    /** llama.cpp's llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0. */
    private static int fileType(GgmlType type) {
        return switch (type) {
            case F32 -> 0;
            case F16 -> 1;
            case Q8_0 -> 7;
            default -> throw new IllegalArgumentException("GGUF export writes F32, F16 or Q8_0, not " + type);
        };
    }

    /**
     * The tensors under GGUF names. Norms (1-D) stay float32 whatever the type, as llama.cpp's converter keeps them; a
     * Q8_0 matrix whose rows are not whole blocks of 32 falls back to F16, as there too.
     */
    static List<GgufWriter.Tensor> tensors(ModelConfig c, TensorSource weights, GgmlType type, LongConsumer progress) {
        List<GgufWriter.Tensor> out = new ArrayList<>();
        for (String name : weights.names()) {
            String gguf = GgufTensorSource.toGgufName(name);
            if (gguf == null) {
                throw new HfpruneException("--format gguf: tensor " + name + " has no GGUF name");
            }
            long[] shape = weights.shape(name);
            GgmlType t = shape.length == 1 ? GgmlType.F32
                    : type == GgmlType.Q8_0 && shape[shape.length - 1] % 32 != 0 ? GgmlType.F16 : type;
            boolean permute = c.ropeStyle() == RopeStyle.HALF && name.matches(".*\\.self_attn\\.[qk]_proj\\.(weight|bias)");
            out.add(new GgufWriter.Tensor(gguf, shape, t, () -> {
                float[] data = weights.readFloats(name);
                if (permute) {
                    int rows = (int) shape[0];
                    data = RopeLayouts.halfToInterleaved(data, rows, data.length / rows, c.headDim());
                }
                progress.accept(data.length);
                return data;
            }));
        }
        RopeScaling scaling = c.ropeScaling();
        if (scaling instanceof RopeScaling.Llama3 || scaling instanceof RopeScaling.FrequencyDivisors) {
            // llama.cpp's form of Llama 3.1's scaling (convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors):
            // each pair's divisor of θ^(-2i/d), 1 for the kept high frequencies, factor for the lowest.
            float[] divisors = scaling.frequencyDivisors(c.ropeTheta(), c.headDim());
            out.add(new GgufWriter.Tensor(GgufConfigs.ROPE_FREQS, new long[] {divisors.length}, GgmlType.F32, () -> divisors));
        }
        return out;
    }
}
