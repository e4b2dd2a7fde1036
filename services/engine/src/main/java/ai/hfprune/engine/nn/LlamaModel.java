package ai.hfprune.engine.nn;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeStyle;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A LLaMA-family decoder (LLaMA, Mistral, Qwen2, Qwen3) on DJL's PyTorch engine, written like
 * {@code modeling_llama.py}: RMSNorm, rotary embeddings, grouped-query attention with a causal mask, SwiGLU MLP.
 *
 * <p>Every intermediate of {@link #forward} is attached to the manager of {@code inputIds}: callers open a
 * sub-manager per batch and close it afterwards, so memory does not grow across batches.
 */
public final class LlamaModel implements AutoCloseable {

    private final ModelConfig config;
    private final NDManager manager;
    private final DataType dataType;
    private final NDArray embedTokens;
    private final NDArray norm;
    private final NDArray lmHead;
    private final List<DecoderLayer> layers;
    /** (cos, sin) of shape (seq, head_dim) per sequence length, laid out for the model's {@link RopeStyle}. */
    private final Map<Integer, NDArray[]> ropeCache = new ConcurrentHashMap<>();
    private final Map<Integer, NDArray> causalMaskCache = new ConcurrentHashMap<>();
    /**
     * sqrt(head_dim) as a 0-d tensor the model owns. Not {@code div(Number)}: DJL makes that scalar on a direct buffer
     * and closes it at once, while autograd keeps it for the backward pass; once the GC frees the buffer, the
     * gradients read freed memory (NaN/Inf or silently wrong scores).
     */
    private final NDArray sqrtHeadDim;

    private LlamaModel(ModelConfig config, NDManager manager, DataType dataType, NDArray embedTokens, NDArray norm,
                       NDArray lmHead, List<DecoderLayer> layers) {
        this.config = config;
        this.manager = manager;
        this.dataType = dataType;
        this.embedTokens = embedTokens;
        this.norm = norm;
        this.lmHead = lmHead;
        this.layers = layers;
        this.sqrtHeadDim = manager.create(Math.sqrt(config.headDim()));
    }

    /** The device scoring and inference run on: the first GPU DJL finds, else the CPU. */
    public static Device defaultDevice() {
        return Engine.getEngine("PyTorch").getGpuCount() > 0 ? Device.gpu() : Device.cpu();
    }

    /**
     * Loads the weights named in Hugging Face's convention from {@code source}, one tensor at a time.
     *
     * @param dataType FLOAT32 normally; FLOAT64 for gradient checks
     */
    public static LlamaModel load(ModelConfig config, TensorSource source, Device device, DataType dataType) {
        NDManager manager = NDManager.newBaseManager(device, "PyTorch");
        try {
            WeightLoader w = new WeightLoader(source, manager, dataType);
            NDArray embed = w.get("model.embed_tokens.weight");
            List<DecoderLayer> layers = new ArrayList<>();
            for (int i = 0; i < config.numHiddenLayers(); i++) {
                String p = "model.layers." + i + ".";
                layers.add(new DecoderLayer(
                        w.get(p + "input_layernorm.weight"),
                        w.get(p + "self_attn.q_proj.weight"), w.optional(p + "self_attn.q_proj.bias"),
                        w.get(p + "self_attn.k_proj.weight"), w.optional(p + "self_attn.k_proj.bias"),
                        w.get(p + "self_attn.v_proj.weight"), w.optional(p + "self_attn.v_proj.bias"),
                        w.get(p + "self_attn.o_proj.weight"),
                        config.qkNorm() ? w.get(p + "self_attn.q_norm.weight") : null,
                        config.qkNorm() ? w.get(p + "self_attn.k_norm.weight") : null,
                        w.get(p + "post_attention_layernorm.weight"),
                        w.get(p + "mlp.gate_proj.weight"), w.get(p + "mlp.up_proj.weight"), w.get(p + "mlp.down_proj.weight")));
            }
            NDArray norm = w.get("model.norm.weight");
            NDArray lmHead = config.tieWordEmbeddings() ? embed : w.get("lm_head.weight");
            return new LlamaModel(config, manager, dataType, embed, norm, lmHead, List.copyOf(layers));
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    public ModelConfig config() {
        return config;
    }

    public NDManager manager() {
        return manager;
    }

    public DataType dataType() {
        return dataType;
    }

    public List<DecoderLayer> layers() {
        return layers;
    }

    public NDArray embedTokens() {
        return embedTokens;
    }

    public NDArray lmHead() {
        return lmHead;
    }

    public NDArray norm() {
        return norm;
    }

    /**
     * Every weight under the Hugging Face name {@link #load} read it from, in load order (the inverse of
     * {@link #load}). Tied embeddings appear once, as {@code model.embed_tokens.weight}: lm_head is the same array.
     * Recovery trains these arrays in place and writes them back under these names.
     */
    public Map<String, NDArray> namedWeights() {
        Map<String, NDArray> out = new LinkedHashMap<>();
        out.put("model.embed_tokens.weight", embedTokens);
        for (int i = 0; i < layers.size(); i++) {
            String p = "model.layers." + i + ".";
            DecoderLayer l = layers.get(i);
            out.put(p + "input_layernorm.weight", l.inputLayernorm());
            putIfPresent(out, p + "self_attn.q_proj.weight", l.qProj());
            putIfPresent(out, p + "self_attn.q_proj.bias", l.qBias());
            putIfPresent(out, p + "self_attn.k_proj.weight", l.kProj());
            putIfPresent(out, p + "self_attn.k_proj.bias", l.kBias());
            putIfPresent(out, p + "self_attn.v_proj.weight", l.vProj());
            putIfPresent(out, p + "self_attn.v_proj.bias", l.vBias());
            out.put(p + "self_attn.o_proj.weight", l.oProj());
            putIfPresent(out, p + "self_attn.q_norm.weight", l.qNorm());
            putIfPresent(out, p + "self_attn.k_norm.weight", l.kNorm());
            out.put(p + "post_attention_layernorm.weight", l.postAttentionLayernorm());
            out.put(p + "mlp.gate_proj.weight", l.gateProj());
            out.put(p + "mlp.up_proj.weight", l.upProj());
            out.put(p + "mlp.down_proj.weight", l.downProj());
        }
        out.put("model.norm.weight", norm);
        if (lmHead != embedTokens) {
            out.put("lm_head.weight", lmHead);
        }
        return out;
    }

    private static void putIfPresent(Map<String, NDArray> out, String name, NDArray array) {
        if (array != null) {
            out.put(name, array);
        }
    }

    /**
     * @param inputIds token ids, shape (batch, seq), INT64; its manager receives every intermediate
     * @return logits, shape (batch, seq, vocab)
     */
    public NDArray forward(NDArray inputIds, ActivationTap tap) {
        return forward(inputIds, tap, Projection.PLAIN);
    }

    /**
     * The forward pass with each layer's q/k/v/o/gate/up/down projection computed by {@code projection} (recovery's
     * LoRA adds its low-rank term there); {@link Projection#PLAIN} gives {@link #forward(NDArray, ActivationTap)}.
     */
    public NDArray forward(NDArray inputIds, ActivationTap tap, Projection projection) {
        long batch = inputIds.getShape().get(0);
        int seq = (int) inputIds.getShape().get(1);
        NDArray hidden = inputIds.getNDArrayInternal().embedding(inputIds, embedTokens, SparseFormat.DENSE).singletonOrThrow();
        NDArray[] rope = rope(seq);
        NDArray mask = causalMask(seq);
        for (int l = 0; l < layers.size(); l++) {
            DecoderLayer layer = layers.get(l);
            NDArray attn = attention(l, layer, rmsNorm(hidden, layer.inputLayernorm()), batch, seq, rope, mask, tap,
                    projection);
            hidden = hidden.add(attn);
            NDArray mlp = mlp(l, layer, rmsNorm(hidden, layer.postAttentionLayernorm()), tap, projection);
            hidden = hidden.add(mlp);
        }
        return Linear.linear(rmsNorm(hidden, norm), lmHead).singletonOrThrow();
    }

    private NDArray attention(int l, DecoderLayer layer, NDArray x, long batch, int seq, NDArray[] rope, NDArray mask,
                              ActivationTap tap, Projection projection) {
        int headDim = config.headDim();
        int numHeads = layer.numHeads(headDim);
        int numKv = layer.numKeyValueHeads(headDim);
        NDArray q = projection.apply(l, "self_attn.q_proj", x, layer.qProj(), layer.qBias())
                .reshape(batch, seq, numHeads, headDim);
        NDArray k = projection.apply(l, "self_attn.k_proj", x, layer.kProj(), layer.kBias())
                .reshape(batch, seq, numKv, headDim);
        NDArray v = projection.apply(l, "self_attn.v_proj", x, layer.vProj(), layer.vBias())
                .reshape(batch, seq, numKv, headDim);
        if (layer.qNorm() != null) { // Qwen3 normalizes each head of q and k before RoPE
            q = rmsNorm(q, layer.qNorm());
            k = rmsNorm(k, layer.kNorm());
        }
        q = applyRope(q.transpose(0, 2, 1, 3), rope);                 // (batch, heads, seq, head_dim)
        k = repeatKv(applyRope(k.transpose(0, 2, 1, 3), rope), numHeads / numKv);
        v = repeatKv(v.transpose(0, 2, 1, 3), numHeads / numKv);
        NDArray scores = q.matMul(k.transpose(0, 1, 3, 2)).div(sqrtHeadDim).add(mask);
        NDArray o = scores.softmax(-1).matMul(v);                      // (batch, heads, seq, head_dim)
        o = tap.attentionOutput(l, o);
        o = o.transpose(0, 2, 1, 3).reshape(batch, seq, (long) numHeads * headDim);
        return projection.apply(l, "self_attn.o_proj", o, layer.oProj(), null);
    }

    private NDArray mlp(int l, DecoderLayer layer, NDArray x, ActivationTap tap, Projection projection) {
        NDArray gate = projection.apply(l, "mlp.gate_proj", x, layer.gateProj(), null);
        NDArray up = projection.apply(l, "mlp.up_proj", x, layer.upProj(), null);
        NDArray a = gate.mul(Activation.sigmoid(gate)).mul(up); // silu(gate) ⊙ up: the input of down_proj
        a = tap.mlpActivation(l, a);
        return projection.apply(l, "mlp.down_proj", a, layer.downProj(), null);
    }

    /**
     * How a decoder layer computes one of its linear projections. {@link #PLAIN} is x·Wᵀ (+ b), the model itself;
     * recovery's LoRA adds (α/R)·(x·Aᵀ)·Bᵀ here, so the frozen W never needs a gradient of its own and W + B·A is
     * never materialized during training.
     */
    @FunctionalInterface
    public interface Projection {
        Projection PLAIN = Projection::linear;

        /**
         * @param name   the projection's Hugging Face name within the layer: {@code self_attn.q_proj} (k, v, o alike),
         *               {@code mlp.gate_proj}, {@code mlp.up_proj} or {@code mlp.down_proj}
         * @param weight (out, in); {@code bias} (out) or null
         */
        NDArray apply(int layer, String name, NDArray x, NDArray weight, NDArray bias);

        /** x·Wᵀ (+ b): the result is attached to the manager of {@code x}. */
        static NDArray linear(int layer, String name, NDArray x, NDArray weight, NDArray bias) {
            return (bias == null ? Linear.linear(x, weight) : Linear.linear(x, weight, bias)).singletonOrThrow();
        }
    }

    private NDArray rmsNorm(NDArray x, NDArray weight) {
        NDArray rms = x.square().mean(new int[] {-1}, true).add(config.rmsNormEps()).sqrt();
        return x.div(rms).mul(weight);
    }

    /** Query head h attends with key/value head h / groupSize, as Hugging Face's repeat_kv. */
    private static NDArray repeatKv(NDArray kv, int groupSize) {
        return groupSize == 1 ? kv : kv.repeat(1, groupSize);
    }

    /** x·cos + rotate(x)·sin, where rotate pairs dimensions as the checkpoint's {@link RopeStyle} says. */
    private NDArray applyRope(NDArray x, NDArray[] rope) {
        Shape shape = x.getShape();
        int half = config.headDim() / 2;
        NDArray rotated;
        if (config.ropeStyle() == RopeStyle.HALF) {
            NDArray x1 = x.get("..., :" + half);
            NDArray x2 = x.get("..., " + half + ":");
            rotated = x2.neg().concat(x1, -1);
        } else {
            NDArray pairs = x.reshape(shape.get(0), shape.get(1), shape.get(2), half, 2);
            NDArray even = pairs.get("..., 0");
            NDArray odd = pairs.get("..., 1");
            rotated = NDArrays.stack(new ai.djl.ndarray.NDList(odd.neg(), even), -1).reshape(shape);
        }
        return x.mul(rope[0]).add(rotated.mul(rope[1]));
    }

    private NDArray[] rope(int seq) {
        return ropeCache.computeIfAbsent(seq, t -> {
            int headDim = config.headDim();
            int half = headDim / 2;
            double[] cos = new double[t * headDim];
            double[] sin = new double[t * headDim];
            for (int pos = 0; pos < t; pos++) {
                for (int i = 0; i < half; i++) {
                    double angle = pos * Math.pow(config.ropeTheta(), -2.0 * i / headDim);
                    // HALF: frequency i sits at i and i + half; INTERLEAVED: at 2i and 2i + 1
                    int a = config.ropeStyle() == RopeStyle.HALF ? i : 2 * i;
                    int b = config.ropeStyle() == RopeStyle.HALF ? i + half : 2 * i + 1;
                    cos[pos * headDim + a] = cos[pos * headDim + b] = Math.cos(angle);
                    sin[pos * headDim + a] = sin[pos * headDim + b] = Math.sin(angle);
                }
            }
            Shape shape = new Shape(t, headDim);
            return new NDArray[] {
                manager.create(cos, shape).toType(dataType, false),
                manager.create(sin, shape).toType(dataType, false)};
        });
    }

    /** Additive mask: 0 where a position may attend, a large negative number above the diagonal. */
    private NDArray causalMask(int seq) {
        return causalMaskCache.computeIfAbsent(seq, t -> {
            double[] mask = new double[t * t];
            for (int i = 0; i < t; i++) {
                for (int j = i + 1; j < t; j++) {
                    mask[i * t + j] = -1e30;
                }
            }
            return manager.create(mask, new Shape(t, t)).toType(dataType, false);
        });
    }

    @Override
    public void close() {
        manager.close();
    }

    /** Streams tensors from a {@link TensorSource} into NDArrays through one staging buffer of a few MB. */
    private static final class WeightLoader {
        private static final int STAGING_FLOATS = 1 << 20;
        private final TensorSource source;
        private final NDManager manager;
        private final DataType dataType;
        private ByteBuffer stagingBytes;

        WeightLoader(TensorSource source, NDManager manager, DataType dataType) {
            this.source = source;
            this.manager = manager;
            this.dataType = dataType;
        }

        NDArray optional(String name) {
            return source.has(name) ? get(name) : null;
        }

        /**
         * The tensor in memory PyTorch owns, filled a few rows at a time through one staging buffer: the weights then
         * never sit in Java's direct memory (whose default limit is the heap's size) and never exist twice.
         */
        NDArray get(String name) {
            long[] shape = source.shape(name);
            long rows = shape.length == 0 ? 1 : shape[0];
            long rowElements = source.numel(name) / Math.max(rows, 1);
            long rowsPerChunk = Math.max(1, STAGING_FLOATS / Math.max(rowElements, 1));
            NDArray array = manager.create(new Shape(shape), DataType.FLOAT32); // uninitialized
            try {
                for (long row = 0; row < rows; row += rowsPerChunk) {
                    long n = Math.min(rowsPerChunk, rows - row);
                    FloatBuffer floats = staging(n * rowElements);
                    source.readFloats(name, row * rowElements, floats);
                    long[] partShape = shape.clone();
                    if (partShape.length > 0) {
                        partShape[0] = n;
                    }
                    try (NDArray part = manager.create(stagingBytes, new Shape(partShape), DataType.FLOAT32)) {
                        if (shape.length == 0) {
                            array.set(part.toFloatArray());
                        } else {
                            array.set(new NDIndex("{}:{}", row, row + n), part);
                        }
                    }
                }
            } catch (RuntimeException e) {
                array.close();
                throw e;
            }
            if (dataType == DataType.FLOAT32) {
                return array;
            }
            NDArray converted = array.toType(dataType, false);
            array.close();
            return converted;
        }

        /** The staging buffer with room for exactly {@code floats} values (grown when one row needs more). */
        private FloatBuffer staging(long floats) {
            int bytes = Math.toIntExact(floats * 4);
            if (stagingBytes == null || stagingBytes.capacity() < bytes) {
                stagingBytes = ByteBuffer.allocateDirect(Math.max(bytes, STAGING_FLOATS * 4)).order(ByteOrder.nativeOrder());
            }
            stagingBytes.clear().limit(bytes);
            return stagingBytes.asFloatBuffer();
        }
    }
}
