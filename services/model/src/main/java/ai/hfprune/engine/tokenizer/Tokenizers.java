package ai.hfprune.engine.tokenizer;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufFile;
import ai.hfprune.engine.model.HfConfigs;
import ai.hfprune.engine.model.ModelConfig;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A model's tokenizer without its weights: a GGUF file's embedded vocabulary (a vocabulary-only GGUF such as
 * llama.cpp's {@code ggml-vocab-*.gguf} included), or a Hugging Face directory's {@code tokenizer.json} with the special
 * ids of its {@code config.json}.
 */
public final class Tokenizers {
    private Tokenizers() {
    }

    /** A Hugging Face tokenizer holds native resources: the caller closes it ({@link HfTokenizer#close}). */
    public static Tokenizer open(Path model) {
        if (Files.isDirectory(model)) {
            if (!Files.isRegularFile(model.resolve("tokenizer.json"))) {
                throw new HfpruneException(model + " has no tokenizer.json");
            }
            ModelConfig config = HfConfigs.read(model);
            return HfTokenizer.fromDirectory(model, config.bosTokenId(), config.eosTokenId());
        }
        if (!Files.isRegularFile(model)) {
            throw new HfpruneException("model " + model + " does not exist");
        }
        if (!model.getFileName().toString().endsWith(".gguf")) {
            throw new HfpruneException("model " + model + " is neither a .gguf file nor a Hugging Face model directory");
        }
        try (GgufFile gguf = GgufFile.open(model)) {
            return SentencePieceTokenizer.fromGguf(gguf);
        }
    }
}
