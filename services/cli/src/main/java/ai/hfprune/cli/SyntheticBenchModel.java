package ai.hfprune.cli;

import ai.hfprune.engine.io.SafetensorsSource.Dtype;
import ai.hfprune.engine.io.SafetensorsWriter;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RandomModels;
import ai.hfprune.engine.tokenizer.SentencePieceConverter;
import ai.hfprune.engine.tokenizer.SentencePieceTokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;

/**
 * {@code bench score}'s compute-bound synthetic model (hidden 512, intermediate 1408, 8 layers, 8 heads over 4) as a
 * Hugging Face directory that the pipeline can sample text for: random weights, with the vocabulary (4,096 pieces) and
 * {@code tokenizer.json} of the real stories3M, so that scorers in other processes read the same model from disk.
 */
final class SyntheticBenchModel {
    private SyntheticBenchModel() {
    }

    static final String TOKENIZER_SOURCE = "models/stories3M/stories3M.gguf";

    static Path write(Path dir) throws IOException {
        try (Checkpoint source = Checkpoint.open(Assets.resolve(TOKENIZER_SOURCE))) {
            SentencePieceTokenizer spm = (SentencePieceTokenizer) source.tokenizer();
            ModelConfig s = RandomModels.syntheticBenchConfig();
            ModelConfig c = RandomModels.llama(source.config().vocabSize(), s.hiddenSize(), s.intermediateSize(),
                    s.numHiddenLayers(), s.numAttentionHeads(), s.numKeyValueHeads());
            RandomModels.writeHuggingFace(c, 1, Dtype.F32, SafetensorsWriter.NO_SHARDING, dir);
            new ObjectMapper().writeValue(dir.resolve("tokenizer.json").toFile(), SentencePieceConverter.tokenizerJson(spm));
            return dir;
        }
    }
}
