package ai.hfprune.engine.model;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufFile;
import ai.hfprune.engine.io.GgufTensorSource;
import ai.hfprune.engine.io.SafetensorsSource;
import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.tokenizer.HfTokenizer;
import ai.hfprune.engine.tokenizer.SentencePieceTokenizer;
import ai.hfprune.engine.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * A model on disk, opened but not loaded: its configuration, its weights (read lazily), its tokenizer and its identity.
 * Either a GGUF file or a Hugging Face directory ({@code config.json}, safetensors, {@code tokenizer.json}). Needs no
 * PyTorch: the services that never run the model (aggregator, calibration-sampler) open it as this;
 * {@link Checkpoint} adds loading it onto the engine.
 */
public class CheckpointFiles implements AutoCloseable {

    private final Path path;
    private final ModelConfig config;
    private final TensorSource weights;
    private final Tokenizer tokenizer;
    private final List<Path> weightFiles;
    private String sha256;

    private CheckpointFiles(Path path, ModelConfig config, TensorSource weights, Tokenizer tokenizer, List<Path> weightFiles) {
        this.path = path;
        this.config = config;
        this.weights = weights;
        this.tokenizer = tokenizer;
        this.weightFiles = weightFiles;
    }

    public static CheckpointFiles open(Path path) {
        if (Files.isDirectory(path)) {
            return openHuggingFace(path);
        }
        if (!Files.isRegularFile(path)) {
            throw new HfpruneException("model " + path + " does not exist");
        }
        if (!path.getFileName().toString().endsWith(".gguf")) {
            throw new HfpruneException("model " + path + " is neither a .gguf file nor a Hugging Face model directory");
        }
        GgufFile gguf = GgufFile.open(path);
        try {
            ModelConfig config = GgufConfigs.read(gguf);
            GgufTensorSource weights = new GgufTensorSource(gguf);
            WeightCheck.checkShapes(config, weights);
            return new CheckpointFiles(path, config, weights, SentencePieceTokenizer.fromGguf(gguf), List.of(path));
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    private static CheckpointFiles openHuggingFace(Path dir) {
        ModelConfig config = HfConfigs.read(dir);
        SafetensorsSource weights = SafetensorsSource.open(dir);
        try {
            WeightCheck.checkShapes(config, weights);
            HfConfigs.readLayerWidths(dir).ifPresentOrElse(w -> WeightCheck.checkLayerWidths(config, w, weights),
                    () -> WeightCheck.checkUniformWidths(config, weights));
            Tokenizer tokenizer = Files.exists(dir.resolve("tokenizer.json"))
                    ? HfTokenizer.fromDirectory(dir, config.bosTokenId(), config.eosTokenId())
                    : null;
            List<Path> files;
            try (Stream<Path> list = Files.list(dir)) {
                files = list.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
            }
            return new CheckpointFiles(dir, config, weights, tokenizer, files);
        } catch (IOException e) {
            weights.close();
            throw new HfpruneException("cannot list " + dir + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    /** The file name without {@code .gguf}, or the directory's name. */
    public String name() {
        String n = path.toAbsolutePath().normalize().getFileName().toString();
        return n.endsWith(".gguf") ? n.substring(0, n.length() - 5) : n;
    }

    public ModelConfig config() {
        return config;
    }

    public TensorSource weights() {
        return weights;
    }

    /** The model's tokenizer; a Hugging Face directory without {@code tokenizer.json} has none (token-id data still works). */
    public Tokenizer tokenizer() {
        if (tokenizer == null) {
            throw new HfpruneException(path + " has no tokenizer.json: give calibration data as a .json file of token ids");
        }
        return tokenizer;
    }

    /**
     * The identity of the weights: the sha256 of the GGUF file, or of the safetensors files' bytes
     * concatenated in name order. Computed once, on first use, unless the {@link DigestCache} knows these files as
     * they are now: then no weight byte is read.
     */
    public synchronized String sha256() {
        if (sha256 == null) {
            Optional<DigestCache> cache = DigestCache.configured();
            sha256 = cache.flatMap(c -> c.lookup(weightFiles)).orElse(null);
            if (sha256 == null) {
                sha256 = digest();
                cache.ifPresent(c -> c.store(weightFiles, sha256));
            }
        }
        return sha256;
    }

    /**
     * Takes the identity an operator declared ({@code model.sha256}) for a process that never reads the weights (the
     * aggregator, the sampler), so that even its first start on a machine without a cached digest reads no weight
     * byte. A cached digest of these files as they are now that disagrees is an error: the files changed, or the
     * setting names another checkpoint. Without one the declaration is taken as it is; the processes that load the
     * weights check it ({@link #verifySha256}), so a wrong one stops the scorers and the pruner before any work.
     */
    public synchronized void declareSha256(String declared) {
        String id = checkedDigest(declared);
        Optional<String> cached = DigestCache.configured().flatMap(c -> c.lookup(weightFiles));
        if (cached.isPresent() && !cached.get().equals(id)) {
            throw new HfpruneException("model.sha256 is " + id + " but the digest cache knows " + path + " as it is now as "
                    + cached.get() + ": the setting names another checkpoint, or the files changed");
        }
        sha256 = id;
    }

    /** Checks a declared identity ({@code model.sha256}) against the weights' digest (cached or computed). */
    public void verifySha256(String declared) {
        String id = checkedDigest(declared);
        String actual = sha256();
        if (!actual.equals(id)) {
            throw new HfpruneException("model.sha256 is " + id + " but the weights of " + path + " digest to " + actual
                    + ": the setting names another checkpoint, or the files changed");
        }
    }

    /** A sha256 as 64 lower-case hexadecimal digits, or an error that says what it is not. */
    public static String checkedDigest(String declared) {
        String id = declared.strip();
        if (!id.matches("[0-9a-f]{64}")) {
            throw new HfpruneException("model.sha256 must be 64 lower-case hexadecimal digits (the sha256 that `hfprune score`"
                    + " prints and every record carries), got '" + declared + "'");
        }
        return id;
    }

    /** Reads every weight byte. */
    private String digest() {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            byte[] buffer = new byte[1 << 20];
            for (Path file : weightFiles) {
                try (InputStream in = Files.newInputStream(file)) {
                    for (int n; (n = in.read(buffer)) > 0; ) {
                        digest.update(buffer, 0, n);
                    }
                }
            }
            return HexFormat.of().formatHex(digest.digest());
        } catch (IOException e) {
            throw new HfpruneException("cannot read " + path + ": " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The same opened files, now owned by a subclass (which closes them). */
    protected CheckpointFiles(CheckpointFiles opened) {
        this(opened.path, opened.config, opened.weights, opened.tokenizer, opened.weightFiles);
    }

    @Override
    public void close() {
        weights.close();
        if (tokenizer instanceof AutoCloseable closeable) {
            try {
                closeable.close();
            } catch (Exception ignored) {
                // the native tokenizer holds no data worth saving
            }
        }
    }
}
