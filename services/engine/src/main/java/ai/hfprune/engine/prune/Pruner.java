package ai.hfprune.engine.prune;

import ai.hfprune.engine.importance.Scores;
import ai.hfprune.engine.io.MapTensorSource;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.LayerWidths;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.WeightCheck;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Applies a {@link PrunePlan} by slicing the weights, not masking them: gate/up rows and down columns per MLP neuron;
 * q rows (and bias) and o columns per kept query head; k/v rows (and biases) per kept KV head. q_norm/k_norm act
 * within a head (head_dim wide) and stay as they are. Whole heads are cut, so the result is right in either RoPE
 * layout. The pruned model computes exactly what the dense model computes with the removed neurons' activations and
 * the removed heads' outputs set to zero.
 */
public final class Pruner {
    private Pruner() {
    }

    private static final Pattern LAYER_TENSOR = Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)");

    /** Plans from {@code scores} (which must have the checkpoint's layer widths) and slices the checkpoint's weights. */
    public static PrunedModel prune(Checkpoint checkpoint, Scores scores, PruneOptions options) {
        ModelConfig config = checkpoint.config();
        LayerWidths widths = WeightCheck.layerWidths(config, checkpoint.weights());
        return apply(config, checkpoint.weights(), Planner.plan(widths, scores, options));
    }

    public static PrunedModel apply(ModelConfig config, TensorSource source, PrunePlan plan) {
        if (plan.layers().size() != config.numHiddenLayers()) {
            throw new IllegalArgumentException("the plan has " + plan.layers().size() + " layers, the model "
                    + config.numHiddenLayers());
        }
        int headDim = config.headDim();
        MapTensorSource out = new MapTensorSource();
        for (String name : source.names()) {
            long[] shape = source.shape(name);
            float[] data = source.readFloats(name);
            Matcher m = LAYER_TENSOR.matcher(name);
            if (!m.matches()) {
                out.put(name, shape, data);
                continue;
            }
            LayerPlan layer = plan.layer(Integer.parseInt(m.group(1)));
            switch (m.group(2)) {
                case "mlp.gate_proj.weight", "mlp.up_proj.weight" -> putRows(out, name, shape, data, layer.keptMlp(), 1);
                case "mlp.down_proj.weight" -> putColumns(out, name, shape, data, layer.keptMlp(), 1);
                case "self_attn.q_proj.weight", "self_attn.q_proj.bias" ->
                        putRows(out, name, shape, data, layer.keptHeads(), headDim);
                case "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias" ->
                        putRows(out, name, shape, data, layer.keptKvGroups(), headDim);
                case "self_attn.o_proj.weight" -> putColumns(out, name, shape, data, layer.keptHeads(), headDim);
                default -> out.put(name, shape, data); // norms, q_norm/k_norm
            }
        }
        return new PrunedModel(prunedConfig(config, plan.prunedWidths()), out, plan);
    }

    /** The config with the largest kept widths: exact when every layer has the same, an upper bound otherwise. */
    static ModelConfig prunedConfig(ModelConfig c, LayerWidths w) {
        int heads = w.maxAttentionHeads();
        int kv = w.maxKeyValueHeads();
        if (heads % kv != 0) { // layers with different group sizes: the original bounds still hold
            heads = c.numAttentionHeads();
            kv = c.numKeyValueHeads();
        }
        return c.withWidths(w.maxIntermediateSize(), heads, kv);
    }

    /** Keeps blocks of {@code block} rows (one block per kept index) of a (rows, cols) matrix or a vector. */
    private static void putRows(MapTensorSource out, String name, long[] shape, float[] data, int[] kept, int block) {
        int cols = shape.length == 1 ? 1 : (int) shape[1];
        int blockSize = block * cols;
        float[] sliced = new float[kept.length * blockSize];
        for (int i = 0; i < kept.length; i++) {
            System.arraycopy(data, kept[i] * blockSize, sliced, i * blockSize, blockSize);
        }
        long[] newShape = shape.clone();
        newShape[0] = (long) kept.length * block;
        out.put(name, newShape, sliced);
    }

    /** Keeps blocks of {@code block} columns (one block per kept index) of a (rows, cols) matrix. */
    private static void putColumns(MapTensorSource out, String name, long[] shape, float[] data, int[] kept, int block) {
        int rows = (int) shape[0];
        int cols = (int) shape[1];
        int newCols = kept.length * block;
        float[] sliced = new float[rows * newCols];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < kept.length; i++) {
                System.arraycopy(data, r * cols + kept[i] * block, sliced, r * newCols + i * block, block);
            }
        }
        out.put(name, new long[] {rows, newCols}, sliced);
    }
}
