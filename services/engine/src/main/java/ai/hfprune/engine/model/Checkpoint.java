package ai.hfprune.engine.model;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.nn.LlamaModel;

import java.nio.file.Path;

/**
 * A model on disk, opened but not yet loaded ({@link CheckpointFiles}: configuration, lazily read weights, tokenizer,
 * identity), that can be loaded onto the PyTorch engine.
 */
public final class Checkpoint extends CheckpointFiles {

    private Checkpoint(CheckpointFiles opened) {
        super(opened);
    }

    public static Checkpoint open(Path path) {
        return new Checkpoint(CheckpointFiles.open(path));
    }

    public LlamaModel load(Device device, DataType dataType) {
        return LlamaModel.load(config(), weights(), device, dataType);
    }

    public LlamaModel load() {
        return load(LlamaModel.defaultDevice(), DataType.FLOAT32);
    }
}
