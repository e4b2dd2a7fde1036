package ai.hfprune.engine.nn;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
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

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A LLaMA-family decoder (LLaMA, Mistral, Qwen2, Qwen3) on DJL's PyTorch engine, written like
 * {@code modeling_llama.py}: RMSNorm, rotary embeddings, grouped-query attention with a causal mask, SwiGLU MLP.
 *
 * <p>Every intermediate of {@link #forward} is attached to the manager of {@code inputIds}: callers open a
 * sub-manager per batch and close it afterwards, so memory does not grow across batches.
 */
public final class LlamaModel implements AutoCloseable {

    /**
     * The types a model can compute in. Not BFLOAT16: DJL 0.36's JNI passes a DataType to libtorch as its ordinal and
     * maps it back in {@code utils::GetScalarTypeFromDType} (djl_pytorch_utils.h), whose switch knows float32, float64,
     * float16, uint8, int32, int8, int64, bool and complex64 only; BFLOAT16 (ordinal 11) falls to {@code default: throw;},
     * a rethrow with no active exception, which calls std::terminate: {@code toType(BFLOAT16, …)} (torchTo),
     * {@code zeros(…, BFLOAT16)} and {@code randomNormal(…, BFLOAT16)} all abort the process
     * ({@code Bf16EngineTest} holds this in a child JVM). Float16 converts, but on a CPU it is no faster and no model here
     * is float16 only.
     */
    public static final java.util.Set<DataType> COMPUTE_TYPES = java.util.Set.of(DataType.FLOAT32, DataType.FLOAT64);

    private final ModelConfig config;
    private final NDManager manager;
    private final DataType dataType;
    private final NDArray embedTokens;
    private final NDArray norm;
    private final NDArray lmHead;
    private final List<DecoderLayer> layers;
    private final PositionTables positions;
    /**
     * sqrt(head_dim) as a 0-d tensor the model owns. Not {@code div(Number)}: DJL makes that scalar on a direct buffer
     * and closes it at once, while autograd keeps it for the backward pass; once the GC frees the buffer, the
     * gradients read freed memory (NaN/Inf or silently wrong scores).
     */
    private final NDArray sqrtHeadDim;
    /** rms_norm_eps as a 0-d tensor, made once: DJL's add(Number) makes a tensor from Java at every call. */
    private final NDArray rmsNormEps;
    /** −1/2, the exponent of the inverse RMS, as a 0-d tensor for the same reason. */
    private final NDArray minusHalf;
    /** See {@link #applyRope}. */
    private final NDArray ropeSigns;
    /** At most this many attention scores at once (128 MiB in float32): see {@link #attend}. */
    private volatile long scoreElements = 1L << 25;

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
        this.rmsNormEps = manager.create(config.rmsNormEps());
        this.minusHalf = manager.create(-0.5);
        this.ropeSigns = ropeSigns(config, manager, dataType);
        this.positions = new PositionTables(config, manager, dataType);
    }

    /** The device scoring and inference run on: the first GPU DJL finds, else the CPU. */
    public static Device defaultDevice() {
        return Engine.getEngine("PyTorch").getGpuCount() > 0 ? Device.gpu() : Device.cpu();
    }

    /**
     * Loads the weights named in Hugging Face's convention from {@code source}, one tensor at a time.
     *
     * @param dataType FLOAT32 normally; FLOAT64 for gradient checks. Nothing else: BFLOAT16 in particular is refused
     *                 here, because DJL 0.36's PyTorch JNI aborts the JVM on any call given it (see {@link #COMPUTE_TYPES})
     */
    public static LlamaModel load(ModelConfig config, TensorSource source, Device device, DataType dataType) {
        if (!COMPUTE_TYPES.contains(dataType)) {
            throw new IllegalArgumentException("the model computes in float32 or float64, not " + dataType
                    + (dataType == DataType.BFLOAT16 ? ": DJL 0.36's PyTorch JNI aborts the JVM on any bfloat16 tensor" : ""));
        }
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

    PositionTables positions() {
        return positions;
    }

    NDArray sqrtHeadDim() {
        return sqrtHeadDim;
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
        return forward(inputIds, tap, projection, null);
    }

    /**
     * A cache for generating one sequence of at most {@code maxLength} tokens with
     * {@link #forward(NDArray, KvCache)}; the RoPE and mask tables are computed for that length here, once.
     */
    public KvCache newKvCache(int maxLength) {
        positions.ensure(maxLength);
        return new KvCache(manager.newSubManager(), this, maxLength);
    }

    /**
     * The forward pass of the positions after those in {@code cache} (inference only: no taps, no gradients), which
     * then holds them too: the prompt first, then one token at a time. Computes what {@link #forward(NDArray,
     * ActivationTap)} of the whole sequence computes at those positions.
     *
     * @param inputIds the new tokens, shape (1, n); its manager receives every intermediate but the cache's
     * @return logits of the new positions, shape (1, n, vocab)
     */
    public NDArray forward(NDArray inputIds, KvCache cache) {
        if (inputIds.getShape().get(0) != 1) {
            throw new IllegalArgumentException("a KV cache holds one sequence: batch 1, got " + inputIds.getShape());
        }
        int seq = (int) inputIds.getShape().get(1);
        checkRoom(cache, seq);
        if (seq == 1 && decodesAlone(cache)) {
            return DecodeStep.token(this, embed(inputIds).reshape(embedTokens.getShape().get(1)), cache).reshape(1, 1, -1);
        }
        NDArray logits = forward(inputIds, ActivationTap.NONE, Projection.PLAIN, cache);
        cache.advance(seq);
        return logits;
    }

    /**
     * The logits after {@code tokenId} fed at the position after those in {@code cache} (which then holds it too), as
     * {@link #forward(NDArray, KvCache)} of that one token computes them: generation's step.
     *
     * @param step receives every intermediate but the cache's
     * @return logits, shape (vocab)
     */
    public NDArray decode(int tokenId, KvCache cache, NDManager step) {
        checkRoom(cache, 1);
        if (!decodesAlone(cache)) {
            NDArray input = step.create(new long[] {tokenId}, new Shape(1, 1));
            return forward(input, cache).reshape(-1);
        }
        NDArray embedding = embedTokens.get(new NDIndex().addIndices(tokenId)); // a view of the row: no copy
        embedding.attach(step);
        return DecodeStep.token(this, embedding, cache);
    }

    private static void checkRoom(KvCache cache, int seq) {
        if (cache.length() + seq > cache.capacity()) {
            throw new IllegalArgumentException("the cache holds at most " + cache.capacity() + " positions");
        }
    }

    /** Whether a token at the cache's next position sees every cached key ({@link DecodeStep} has no mask). */
    private boolean decodesAlone(KvCache cache) {
        return !config.slidingWindow().bitesAt(cache.length() + 1);
    }

    private NDArray forward(NDArray inputIds, ActivationTap tap, Projection projection, KvCache cache) {
        long batch = inputIds.getShape().get(0);
        int seq = (int) inputIds.getShape().get(1);
        int offset = cache == null ? 0 : cache.length();
        NDManager local = inputIds.getManager();
        NDArray hidden = embed(inputIds);
        NDArray[] rope = positions.rope(offset, offset + seq, local);
        // one new token attends to every cached position: nothing to mask
        NDArray mask = seq == 1 && offset > 0 ? null : positions.causalMask(offset, offset + seq, local);
        NDArray windowMask = positions.slidingWindowMask(offset, offset + seq, local); // null unless the window hides a key
        for (int l = 0; l < layers.size(); l++) {
            NDArray layerMask = windowMask != null && config.slidingWindow().appliesTo(l) ? windowMask : mask;
            hidden = layer(l, hidden, batch, seq, rope, layerMask, tap, projection, cache);
        }
        return head(hidden);
    }

    /** Decoder layer {@code l}: its input hidden state to its output (the input of layer l + 1). */
    private NDArray layer(int l, NDArray hidden, long batch, int seq, NDArray[] rope, NDArray mask,
                          ActivationTap tap, Projection projection, KvCache cache) {
        NDArray hMid = attentionBlock(l, hidden, batch, seq, rope, mask, tap, projection, cache);
        NDArray mlp = mlp(l, layers.get(l), mlpInput(l, hMid), tap, projection);
        return hMid.add(tap.mlpBlockOutput(l, mlp));
    }

    /** The residual stream between layer l's two blocks: h_mid = h + o_proj(attention(input_layernorm(h))). */
    private NDArray attentionBlock(int l, NDArray hidden, long batch, int seq, NDArray[] rope, NDArray mask,
                                   ActivationTap tap, Projection projection, KvCache cache) {
        DecoderLayer layer = layers.get(l);
        NDArray x = rmsNorm(hidden, layer.inputLayernorm());
        NDArray attn = attention(l, layer, x, batch, seq, rope, mask, tap, projection, cache);
        return hidden.add(tap.attentionBlockOutput(l, attn));
    }

    /*
     * The forward pass in stages, for scoring that keeps only each layer's input and recomputes the layer during the
     * backward pass: embed, then layer(0..L-1), then head compute what forward(inputIds, tap) computes. Each stage's
     * results are attached to the manager of its input, so a caller can give every layer a manager of its own.
     */

    /** The token embeddings, shape (batch, seq, hidden): the input of layer 0; attached to the manager of {@code inputIds}. */
    public NDArray embed(NDArray inputIds) {
        return inputIds.getNDArrayInternal().embedding(inputIds, embedTokens, SparseFormat.DENSE).singletonOrThrow();
    }

    /**
     * Decoder layer {@code l} over whole sequences from position 0 (no cache, the plain projections), as inside
     * {@link #forward(NDArray, ActivationTap)}.
     *
     * @param hidden the layer's input, shape (batch, seq, hidden); its manager receives every intermediate
     */
    public NDArray layer(int l, NDArray hidden, ActivationTap tap) {
        return layer(l, hidden, tap, Projection.PLAIN);
    }

    /** As {@link #layer(int, NDArray, ActivationTap)} with each projection computed by {@code projection}. */
    public NDArray layer(int l, NDArray hidden, ActivationTap tap, Projection projection) {
        int seq = (int) hidden.getShape().get(1);
        NDManager local = hidden.getManager();
        return layer(l, hidden, hidden.getShape().get(0), seq, positions.rope(0, seq, local), mask(l, seq, local), tap,
                projection, null);
    }

    /** post_attention_layernorm(h_mid): the input of layer l's gate_proj and up_proj. */
    private NDArray mlpInput(int l, NDArray hMid) {
        return rmsNorm(hMid, layers.get(l).postAttentionLayernorm());
    }

    /**
     * What layer l's attention reads besides its weights over whole sequences of {@code seq} positions from 0, for a
     * pass written out of the model (scoring's layer kernels): the RoPE tables of q (scaled by 1/sqrt(head_dim)) and
     * of k, the rotation's signs in the sines, and the mask. Attached to {@code local}.
     */
    public AttentionTables attentionTables(int l, int seq, NDManager local) {
        NDArray[][] tables = ropeTables(positions.rope(0, seq, local));
        return new AttentionTables(tables[0][0], tables[0][1], tables[1][0], tables[1][1], mask(l, seq, local));
    }

    /**
     * q's and k's {cos, sin} tables from RoPE's: the rotation's signs folded into the sines, and q's 1/sqrt(head_dim)
     * into both of its tables (seq × head_dim each), so that neither the rotated half nor the scores need a pass of
     * their own.
     */
    private NDArray[][] ropeTables(NDArray[] rope) {
        NDArray[] k = {rope[0], rope[1].mul(ropeSigns)};
        NDArray[] q = {k[0].div(sqrtHeadDim), k[1].div(sqrtHeadDim)};
        return new NDArray[][] {q, k};
    }

    /** See {@link #attentionTables}: each table (seq, head_dim), the mask (seq, seq). */
    public record AttentionTables(NDArray cosQ, NDArray sinQ, NDArray cosK, NDArray sinK, NDArray mask) {
    }

    /** Score elements per group of heads in the attention's products (see {@link #attend}). */
    public long scoreElements() {
        return scoreElements;
    }

    /** The attention mask of layer l over whole sequences of {@code seq} tokens from position 0. */
    private NDArray mask(int l, int seq, NDManager local) {
        NDArray windowMask = config.slidingWindow().appliesTo(l) ? positions.slidingWindowMask(0, seq, local) : null;
        return windowMask != null ? windowMask : positions.causalMask(0, seq, local);
    }

    /**
     * The final norm and the LM head of hidden states of any positions (both act on each position alone, so the head
     * of a slice of positions is that slice of the head).
     *
     * @param hidden the last layer's output, shape (batch, positions, hidden)
     * @return logits, shape (batch, positions, vocab), attached to the manager of {@code hidden}
     */
    public NDArray head(NDArray hidden) {
        return Linear.linear(rmsNorm(hidden, norm), lmHead).singletonOrThrow();
    }

    private NDArray attention(int l, DecoderLayer layer, NDArray x, long batch, int seq, NDArray[] rope, NDArray mask,
                              ActivationTap tap, Projection projection, KvCache cache) {
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
        NDArray[][] tables = ropeTables(rope);
        q = applyRope(q.transpose(0, 2, 1, 3), tables[0]);            // (batch, heads, seq, head_dim), scaled
        k = applyRope(k.transpose(0, 2, 1, 3), tables[1]);
        v = v.transpose(0, 2, 1, 3);
        if (cache != null) { // attend over every position so far: (batch, kv_heads, cached + seq, head_dim)
            NDArray[] kv = cache.append(l, k, v, x.getManager());
            k = kv[0];
            v = kv[1];
        }
        k = repeatKv(k, numHeads / numKv);
        v = repeatKv(v, numHeads / numKv);
        NDArray o = attend(q, k, v, mask);                             // (batch, heads, seq, head_dim)
        o = tap.attentionOutput(l, o);
        o = o.transpose(0, 2, 1, 3).reshape(batch, seq, (long) numHeads * headDim);
        return projection.apply(l, "self_attn.o_proj", o, layer.oProj(), null);
    }

    /**
     * softmax(q·kᵀ + mask)·v per query head, q already scaled by 1/sqrt(head_dim), over groups of heads whose score
     * matrices hold at most {@link #scoreElements} elements together: the (batch, heads, seq, seq) scores are the
     * largest arrays of the pass (512 MiB a layer for 32 heads at T = 2048), and a backward pass holds a few arrays of
     * that shape at once.
     */
    private NDArray attend(NDArray q, NDArray k, NDArray v, NDArray mask) {
        long heads = q.getShape().get(1);
        long perHead = q.getShape().get(0) * q.getShape().get(2) * k.getShape().get(2);
        long group = Math.max(1, Math.min(heads, scoreElements / perHead));
        if (group == heads) {
            return attendGroup(q, k, v, mask);
        }
        NDList parts = new NDList();
        for (long h = 0; h < heads; h += group) {
            NDIndex range = new NDIndex(":, {}:{}", h, Math.min(h + group, heads));
            parts.add(attendGroup(q.get(range), k.get(range), v.get(range), mask));
        }
        return NDArrays.concat(parts, 1);
    }

    /**
     * One group of heads. The mask is added in place and the scores and probabilities are released as soon as they are
     * used, so autograd holds the only reference it needs: the matrix product saves its operands, not its result; the
     * mask's addition saves nothing; softmax saves its output, the probabilities, which the next product saves too and
     * the backward pass frees group by group.
     */
    private NDArray attendGroup(NDArray q, NDArray k, NDArray v, NDArray mask) {
        NDArray scores = q.matMul(k.transpose(0, 1, 3, 2));
        if (mask != null) {
            scores.addi(mask);
        }
        NDArray probabilities = scores.softmax(-1);
        scores.close();
        NDArray o = probabilities.matMul(v);
        probabilities.close();
        return o;
    }

    /** For tests: score elements per group of heads in {@link #attend} (a small value forces several groups). */
    public void scoreElements(long elements) {
        this.scoreElements = elements;
    }

    private NDArray mlp(int l, DecoderLayer layer, NDArray x, ActivationTap tap, Projection projection) {
        NDArray gate = projection.apply(l, "mlp.gate_proj", x, layer.gateProj(), null);
        NDArray up = projection.apply(l, "mlp.up_proj", x, layer.upProj(), null);
        NDArray a = silu(gate).mul(up); // the input of down_proj
        a = tap.mlpActivation(l, a);
        return projection.apply(l, "mlp.down_proj", a, layer.downProj(), null);
    }

    /** silu(x) = x · sigmoid(x), SwiGLU's gate activation. */
    public static NDArray silu(NDArray x) {
        return x.mul(Activation.sigmoid(x));
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

    /**
     * x / sqrt(mean(x²) + eps) · weight over the last dimension, with mean(x²) = ‖x‖² / n: the norm reads x once and
     * writes one value per row, where squaring then averaging wrote a whole copy of x, and its backward pass is one
     * product where those of the square, the mean and the division were five passes over x (issue 12: the norms were
     * 6% of the scoring pass). Everything else acts on one value per row.
     */
    NDArray rmsNorm(NDArray x, NDArray weight) {
        long n = x.getShape().get(x.getShape().dimension() - 1);
        NDArray inverseWidth = x.getManager().create(1.0 / n); // a tensor of x's manager, alive as long as the graph
        NDArray inverseRms = x.norm(2, new int[] {-1}, true).square().mul(inverseWidth).add(rmsNormEps).pow(minusHalf);
        return x.mul(inverseRms).mul(weight);
    }

    /** Query head h attends with key/value head h / groupSize, as Hugging Face's repeat_kv. */
    private static NDArray repeatKv(NDArray kv, int groupSize) {
        return groupSize == 1 ? kv : kv.repeat(1, groupSize);
    }

    /**
     * x·cos + rotate(x)·sin, where rotate pairs dimensions as the checkpoint's {@link RopeStyle} says: (−x2, x1) for
     * HALF, (−odd, even) pair by pair for INTERLEAVED. The minus signs are in {@code rope[1]} already
     * ({@link #ropeSigns}), so the halves or pairs are only swapped here.
     */
    private NDArray applyRope(NDArray x, NDArray[] rope) {
        Shape shape = x.getShape();
        int half = config.headDim() / 2;
        NDArray swapped;
        if (config.ropeStyle() == RopeStyle.HALF) {
            NDArray x1 = x.get("..., :" + half);
            NDArray x2 = x.get("..., " + half + ":");
            swapped = x2.concat(x1, -1);
        } else {
            NDArray pairs = x.reshape(shape.get(0), shape.get(1), shape.get(2), half, 2);
            NDArray even = pairs.get("..., 0");
            NDArray odd = pairs.get("..., 1");
            swapped = NDArrays.stack(new ai.djl.ndarray.NDList(odd, even), -1).reshape(shape);
        }
        return x.mul(rope[0]).add(swapped.mul(rope[1]));
    }

    /** The signs of the rotation, per dimension of a head: −1 where rotate(x) takes a negated element, else +1. */
    private static NDArray ropeSigns(ModelConfig config, NDManager manager, DataType dataType) {
        int headDim = config.headDim();
        double[] signs = new double[headDim];
        for (int i = 0; i < headDim; i++) {
            boolean negated = config.ropeStyle() == RopeStyle.HALF ? i < headDim / 2 : i % 2 == 0;
            signs[i] = negated ? -1 : 1;
        }
        NDArray float64 = manager.create(signs);
        if (dataType == DataType.FLOAT64) {
            return float64;
        }
        NDArray converted = float64.toType(dataType, false);
        float64.close();
        return converted;
    }

    @Override
    public void close() {
        positions.close();
        manager.close();
    }
}
