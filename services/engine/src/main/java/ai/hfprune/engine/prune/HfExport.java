package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.SafetensorsSource.Dtype;
import ai.hfprune.engine.io.SafetensorsWriter;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.model.HfConfigs;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeLayouts;
import ai.hfprune.engine.model.RopeScaling;
import ai.hfprune.engine.model.RopeStyle;
import ai.hfprune.engine.tokenizer.SentencePieceConverter;
import ai.hfprune.engine.tokenizer.SentencePieceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * Saves a pruned model as a Hugging Face checkpoint directory, whatever the input format (atomically, through
 * {@link ModelExport}): {@code model.safetensors} (float32, sharded above a size), {@code config.json},
 * {@code generation_config.json}, the tokenizer files and {@code prune-report.json}.
 *
 * <p>A GGUF input is converted: its Q/K rows are un-permuted into rotate-half order and the config says
 * {@link RopeStyle#HALF}; its embedded SentencePiece vocabulary becomes a {@code tokenizer.json}
 * ({@link SentencePieceConverter}). A Hugging Face input's tokenizer and generation config files are copied.
 */
public final class HfExport {
    private HfExport() {
    }

    /** transformers' default shard size for save_pretrained is 5GB; hfprune's CLI default is 2GB. */
    public record Options(long maxShardBytes, boolean force) {
        public Options {
            if (maxShardBytes <= 0) {
                throw new HfpruneException("--max-shard-size must be positive, got " + maxShardBytes + " bytes");
            }
        }
    }

    public static final String GENERATION_CONFIG = "generation_config.json";
    /** Copied from a Hugging Face input when present. */
    static final List<String> HF_TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json");

    private static final JsonMapper JSON = new JsonMapper();

    /**
     * The Hugging Face directory alone; {@link ModelExport#save} writes other formats beside it.
     *
     * @param progress told the element count of each tensor as it is written
     */
    public static void save(Checkpoint source, PrunedModel model, PruneReport report, Path out, Options options,
                            LongConsumer progress) {
        ModelExport.save(source, model, report, out, ModelExport.Options.hf(options.maxShardBytes(), options.force()),
                progress);
    }

    /** Writes the Hugging Face files into {@code dir}, which {@link ModelExport} makes appear atomically. */
    static void writeInto(Checkpoint source, PrunedModel model, Path dir, long maxShardBytes, LongConsumer progress)
            throws IOException {
        ModelConfig config = halfRope(model.config());
        SafetensorsWriter.write(dir, tensors(model.config(), model.weights(), progress), Dtype.F32, maxShardBytes);
        HfConfigs.write(config, model.widths(), dir);
        writeTokenizer(source, config, dir);
        writeGenerationConfig(source, config, dir);
    }

    /**
     * Refuses an output that exists and is not an empty directory (unless {@code force}), and one that is or holds the
     * input, which --force would delete. {@link #save} checks too; commands call this before long work.
     */
    public static void checkOutput(Path input, Path out, boolean force) {
        Path in = input.toAbsolutePath().normalize();
        if (in.startsWith(out.toAbsolutePath().normalize())) {
            throw new HfpruneException("output " + out + " would replace the input model " + input + "; choose another --out");
        }
        AtomicDirectory.requireWritable(out, force);
    }

    /** Refuses, before any long work, an input whose pruned model config.json could not describe. */
    public static void checkSource(Checkpoint source) {
        if (source.config().ropeScaling() instanceof RopeScaling.FrequencyDivisors) {
            throw new HfpruneException("--format hf: " + HfConfigs.noRopeScalingForm());
        }
    }

    /** The tensors in write order; GGUF's interleaved Q/K rows are put in rotate-half order as they are written. */
    static List<SafetensorsWriter.Tensor> tensors(ModelConfig c, TensorSource weights, LongConsumer progress) {
        List<SafetensorsWriter.Tensor> out = new ArrayList<>();
        for (String name : weights.names()) {
            long[] shape = weights.shape(name);
            boolean unpermute = c.ropeStyle() == RopeStyle.INTERLEAVED && isQueryOrKey(name);
            out.add(new SafetensorsWriter.Tensor(name, shape, () -> {
                float[] data = weights.readFloats(name);
                if (unpermute) {
                    int rows = (int) shape[0];
                    data = RopeLayouts.interleavedToHalf(data, rows, data.length / rows, c.headDim());
                }
                progress.accept(data.length);
                return data;
            }));
        }
        return out;
    }

    private static boolean isQueryOrKey(String name) {
        return name.matches("model\\.layers\\.\\d+\\.self_attn\\.[qk]_proj\\.(weight|bias)");
    }

    static ModelConfig halfRope(ModelConfig c) {
        return c.withRopeStyle(RopeStyle.HALF);
    }

    private static void writeTokenizer(Checkpoint source, ModelConfig config, Path dir) throws IOException {
        if (Files.isDirectory(source.path())) {
            copyPresent(source.path(), dir, HF_TOKENIZER_FILES);
            return;
        }
        if (source.tokenizer() instanceof SentencePieceTokenizer spm) {
            writeJson(dir.resolve("tokenizer.json"), SentencePieceConverter.tokenizerJson(spm));
            writeJson(dir.resolve("tokenizer_config.json"),
                    SentencePieceConverter.tokenizerConfig(spm, config.maxPositionEmbeddings()));
        }
    }

    /** The input's own generation config if it has one (it may hold sampling settings), else BOS/EOS. */
    private static void writeGenerationConfig(Checkpoint source, ModelConfig config, Path dir) throws IOException {
        if (Files.isDirectory(source.path()) && Files.isRegularFile(source.path().resolve(GENERATION_CONFIG))) {
            copyPresent(source.path(), dir, List.of(GENERATION_CONFIG));
            return;
        }
        ObjectNode g = JSON.createObjectNode();
        g.put("_from_model_config", true);
        putTokenId(g, "bos_token_id", config.bosTokenId());
        putTokenId(g, "eos_token_id", config.eosTokenId());
        writeJson(dir.resolve(GENERATION_CONFIG), g);
    }

    private static void putTokenId(ObjectNode o, String key, int id) {
        if (id >= 0) {
            o.put(key, id);
        }
    }

    private static void copyPresent(Path from, Path to, List<String> names) throws IOException {
        for (String name : names) {
            if (Files.isRegularFile(from.resolve(name))) {
                Files.copy(from.resolve(name), to.resolve(name));
            }
        }
    }

    private static void writeJson(Path file, JsonNode json) throws IOException {
        Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json) + "\n");
    }
}
