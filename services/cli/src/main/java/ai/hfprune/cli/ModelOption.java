package ai.hfprune.cli;

import ai.hfprune.engine.model.Checkpoint;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** {@code --model}: a GGUF file or a Hugging Face directory; stories260K from the assets by default. */
public class ModelOption {

    @Option(names = "--model", paramLabel = "MODEL",
            description = "GGUF file or Hugging Face model directory (default: stories260K from the assets folder)")
    Path model;

    public Path path() {
        return model != null ? model : Assets.resolve(Assets.DEFAULT_MODEL);
    }

    public Checkpoint open() {
        return Checkpoint.open(path());
    }
}
