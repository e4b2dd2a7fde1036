package ai.hfprune.engine.recover;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.io.MapTensorSource;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.nn.LlamaModel;

import java.util.Arrays;
import java.util.Map;
import java.util.function.Function;

/**
 * What recovery trains: a student model and the arrays Adam updates in place. Either every weight of the model
 * ({@link FullFineTuning}) or low-rank adapters on a frozen model ({@link LoraAdapters}); either way {@link #export()}
 * gives a plain model again, under the input's tensor names and shapes.
 */
interface Adaptation extends AutoCloseable {

    /**
     * @param device   the teacher's: the student's logits meet the teacher's in one loss
     * @param loraRank 0 for full fine-tuning, else the adapters' rank R
     */
    static Adaptation of(ModelConfig config, TensorSource weights, Device device, DataType dataType, int loraRank,
                         long seed) {
        LlamaModel model = LlamaModel.load(config, weights, device, dataType);
        try {
            return loraRank == 0 ? new FullFineTuning(model, weights) : new LoraAdapters(model, weights, loraRank, seed);
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /** The model whose manager holds the base weights; forward passes go through {@link #logits}, not its forward. */
    LlamaModel model();

    /** The student's logits (batch, seq, vocab), attached to the manager of {@code inputIds}. */
    NDArray logits(NDArray inputIds);

    /** The trainable arrays by a stable id (the optimizer keeps its state per id), each requiring a gradient. */
    Map<String, NDArray> parameters();

    /**
     * The current weights as a plain model (adapters merged) in float32, with exactly the names and shapes of the
     * weights it was made from; tensors the model does not use are copied through unchanged.
     */
    MapTensorSource export();

    /** The tensors of {@code original}, each replaced by {@code current}'s array of that name where there is one. */
    static MapTensorSource export(TensorSource original, Function<String, NDArray> current) {
        MapTensorSource out = new MapTensorSource();
        for (String name : original.names()) {
            long[] shape = original.shape(name);
            NDArray w = current.apply(name);
            if (w != null && !Arrays.equals(shape, w.getShape().getShape())) {
                throw new IllegalStateException(name + " changed shape: " + w.getShape() + " vs "
                        + Arrays.toString(shape));
            }
            out.put(name, shape, w == null ? original.readFloats(name) : Float32.of(w));
        }
        return out;
    }

    @Override
    void close();
}
