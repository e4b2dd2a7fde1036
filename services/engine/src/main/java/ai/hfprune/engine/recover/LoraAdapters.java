package ai.hfprune.engine.recover;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import ai.hfprune.engine.io.MapTensorSource;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.nn.ActivationTap;
import ai.hfprune.engine.nn.LlamaModel;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * LoRA: every q/k/v/o/gate/up/down weight W (out × in) of every layer gets a pair A (R × in) and B (out × R), and the
 * layer computes x·Wᵀ (+ b) + (α/R)·(x·Aᵀ)·Bᵀ, i.e. W_eff = W + (α/R)·B·A. W, biases, norms and embeddings are
 * frozen: only A and B take gradients, and W + B·A is only formed by {@link #export()}.
 *
 * <p>As in the LoRA paper and PEFT, B starts at zero (the adapted model starts as the pruned model exactly) and A at
 * uniform ±1/√in (PEFT's kaiming-uniform bound), seeded. α = 2R ({@link #ALPHA_PER_RANK}), so the scale α/R is 2
 * whatever the rank: with Adam the scale acts as a multiplier on the learning rate of W_eff, and a fixed one lets
 * the rank be changed without retuning the learning rate.
 */
final class LoraAdapters implements Adaptation {

    static final double ALPHA_PER_RANK = 2.0;
    static final List<String> TARGETS = List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
            "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");

    private final LlamaModel model;
    private final TensorSource original;
    private final int rank;
    /** Holds A, B and the scale; the frozen model's manager holds only the base weights. */
    private final NDManager manager;
    /** α/R as a 0-d tensor: {@code mul(Number)} would free its scalar before autograd's backward reads it. */
    private final NDArray scale;
    /** "layer.name" → {A, B} */
    private final Map<String, NDArray[]> adapters = new LinkedHashMap<>();
    private final Map<String, NDArray> parameters = new LinkedHashMap<>();

    LoraAdapters(LlamaModel model, TensorSource original, int rank, long seed) {
        if (rank < 1) {
            throw new IllegalArgumentException("the LoRA rank must be at least 1, got " + rank);
        }
        this.model = model;
        this.original = original;
        this.rank = rank;
        this.manager = model.manager().newSubManager();
        DataType type = model.dataType();
        this.scale = typed(manager.create(ALPHA_PER_RANK), type);
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, NDArray> weights = model.namedWeights();
        for (int l = 0; l < model.layers().size(); l++) {
            for (String target : TARGETS) {
                long[] shape = weights.get(weightName(l, target)).getShape().getShape(); // (out, in)
                NDArray a = typed(uniform(random, rank, shape[1], 1 / Math.sqrt(shape[1])), type);
                NDArray b = manager.zeros(new Shape(shape[0], rank), type);
                a.setRequiresGradient(true);
                b.setRequiresGradient(true);
                adapters.put(l + "." + target, new NDArray[] {a, b});
                parameters.put(weightName(l, target) + ".lora_A", a);
                parameters.put(weightName(l, target) + ".lora_B", b);
            }
        }
    }

    private NDArray uniform(SplittableRandom random, long rows, long cols, double bound) {
        double[] v = new double[Math.toIntExact(rows * cols)];
        for (int i = 0; i < v.length; i++) {
            v[i] = random.nextDouble(-bound, bound);
        }
        return manager.create(v, new Shape(rows, cols)); // float64 from Java, converted to the model's type
    }

    /** {@code x} in {@code type}; a converted array replaces {@code x}, which is closed. */
    private static NDArray typed(NDArray x, DataType type) {
        if (x.getDataType() == type) {
            return x;
        }
        NDArray converted = x.toType(type, false);
        x.close();
        return converted;
    }

    private static String weightName(int layer, String target) {
        return "model.layers." + layer + "." + target + ".weight";
    }

    int rank() {
        return rank;
    }

    /** {A, B} of one projection, e.g. {@code adapter(0, "mlp.up_proj")}. */
    NDArray[] adapter(int layer, String target) {
        return adapters.get(layer + "." + target);
    }

    @Override
    public LlamaModel model() {
        return model;
    }

    @Override
    public NDArray logits(NDArray inputIds) {
        return model.forward(inputIds, ActivationTap.NONE, (layer, name, x, weight, bias) -> {
            NDArray base = LlamaModel.Projection.linear(layer, name, x, weight, bias);
            NDArray[] ab = adapters.get(layer + "." + name);
            // x first in every operation, so the results go to the batch's manager, not to the adapters'
            NDArray low = Linear.linear(Linear.linear(x, ab[0]).singletonOrThrow(), ab[1]).singletonOrThrow();
            return base.add(low.mul(scale));
        });
    }

    @Override
    public Map<String, NDArray> parameters() {
        return parameters;
    }

    /** W + (α/R)·B·A for every adapted weight; the other tensors are copied from the input unchanged. */
    @Override
    public MapTensorSource export() {
        try (NDManager scratch = manager.newSubManager()) {
            Map<String, NDArray> merged = new LinkedHashMap<>();
            Map<String, NDArray> weights = model.namedWeights();
            for (int l = 0; l < model.layers().size(); l++) {
                for (String target : TARGETS) {
                    NDArray[] ab = adapter(l, target);
                    // detached copies in the scratch manager first: every result below then lands there too
                    NDArray a = ab[0].stopGradient();
                    NDArray b = ab[1].stopGradient();
                    a.attach(scratch);
                    b.attach(scratch);
                    merged.put(weightName(l, target), b.matMul(a).mul(scale).add(weights.get(weightName(l, target))));
                }
            }
            return Adaptation.export(original, merged::get);
        }
    }

    @Override
    public void close() {
        manager.close();
        model.close();
    }
}
