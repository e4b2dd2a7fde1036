package ai.hfprune.engine.prune;

import ai.hfprune.engine.io.GgufTensorSource;
import ai.hfprune.engine.io.GgufValue;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.tokenizer.GgufVocabularyConverter;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The {@code tokenizer.*} metadata of an exported GGUF file: a GGUF input's as it is, a Hugging Face input's
 * tokenizer.json converted ({@link GgufVocabularyConverter}).
 */
final class GgufTokenizer {
    private GgufTokenizer() {
    }

    /**
     * A GGUF input's tokenizer keys are carried over exactly, with their types: pruning does not touch the vocabulary,
     * and llama.cpp's tokenizer then behaves as it did on the input.
     */
    static Map<String, GgufValue> metadata(Checkpoint source) {
        if (source.weights() instanceof GgufTensorSource gguf) {
            Map<String, GgufValue> out = new LinkedHashMap<>();
            gguf.gguf().typedMetadata().forEach((key, value) -> {
                if (key.startsWith("tokenizer.")) {
                    out.put(key, value);
                }
            });
            return out;
        }
        return GgufVocabularyConverter.fromDirectory(source.path(), source.config().bosTokenId(),
                source.config().eosTokenId());
    }
}
