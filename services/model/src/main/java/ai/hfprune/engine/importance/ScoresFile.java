package ai.hfprune.engine.importance;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.AtomicFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Path;

/**
 * {@code scores.json}: the finalized importance of every MLP neuron and query head of every layer.
 * <pre>{"format":"hfprune.scores/1","model":{"name":…,"sha256":…},"criterion":…,"windows":N,"seq_len":T,
 *  "tokens":N·T,"layers":[{"index":0,"mlp":[…],"heads":[…]},…]}</pre>
 */
public final class ScoresFile {

    public static final String FORMAT = "hfprune.scores/1";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A scores file as read back: the scores with the model identity and window length they were computed for. */
    public record Contents(String modelName, String modelSha256, int seqLen, Scores scores) {
    }

    private ScoresFile() {
    }

    public static void write(Path file, String modelName, String modelSha256, int seqLen, Scores scores) {
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.putObject("model").put("name", modelName).put("sha256", modelSha256);
        root.put("criterion", scores.criterion().id());
        root.put("windows", scores.windows());
        root.put("seq_len", seqLen);
        root.put("tokens", scores.tokens());
        ArrayNode layers = root.putArray("layers");
        for (int l = 0; l < scores.mlp().length; l++) {
            ObjectNode layer = layers.addObject();
            layer.put("index", l);
            ArrayNode mlp = layer.putArray("mlp");
            for (double v : scores.mlp()[l]) {
                mlp.add(v);
            }
            ArrayNode heads = layer.putArray("heads");
            for (double v : scores.heads()[l]) {
                heads.add(v);
            }
        }
        AtomicFiles.write(file, out -> JSON.writerWithDefaultPrettyPrinter().writeValue(out, root));
    }

    public static Contents read(Path file) {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new HfpruneException("cannot read scores file " + file + ": " + e.getMessage(), e);
        }
        if (root == null || !FORMAT.equals(root.path("format").asText())) {
            throw new HfpruneException(file + " is not an hfprune scores file (format " + FORMAT + ")");
        }
        JsonNode layers = root.path("layers");
        double[][] mlp = new double[layers.size()][];
        double[][] heads = new double[layers.size()][];
        for (int l = 0; l < layers.size(); l++) {
            mlp[l] = doubles(layers.get(l).path("mlp"));
            heads[l] = doubles(layers.get(l).path("heads"));
        }
        Scores scores = new Scores(Criterion.parse(root.path("criterion").asText()), root.path("windows").asLong(),
                root.path("tokens").asLong(), mlp, heads);
        return new Contents(root.path("model").path("name").asText(), root.path("model").path("sha256").asText(),
                root.path("seq_len").asInt(), scores);
    }

    private static double[] doubles(JsonNode array) {
        double[] out = new double[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asDouble();
        }
        return out;
    }
}
