package ai.hfprune.engine.compensate;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.AtomicFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@link GramStats} on disk, in the safetensors format with float64 tensors ({@code layers.L.mlp_gram} and
 * {@code layers.L.attn_gram}, each n × n, and when scored with gradients {@code layers.L.attn_out_sensitivity} and
 * {@code layers.L.mlp_out_sensitivity}, each of the hidden size), so that {@code safetensors.numpy.load_file} reads it too. The
 * {@code __metadata__} holds the format, the model's name and sha256, the calibration tokens, windows and T.
 * Written by {@code hfprune score --stats}, read by {@code hfprune prune --stats}.
 */
public final class GramFile {
    private GramFile() {
    }

    public static final String FORMAT = "hfprune.stats/1";
    private static final JsonMapper JSON = new JsonMapper();

    public record Contents(String modelName, String modelSha256, int seqLen, GramStats stats) {
    }

    public static void write(Path file, String modelName, String modelSha256, int seqLen, GramStats stats) {
        ObjectNode header = JSON.createObjectNode();
        header.putObject("__metadata__").put("format", FORMAT).put("model", modelName).put("sha256", modelSha256)
                .put("tokens", Long.toString(stats.tokens())).put("windows", Long.toString(stats.windows()))
                .put("seq_len", Integer.toString(seqLen));
        long offset = 0;
        for (int l = 0; l < stats.numLayers(); l++) {
            offset = entry(header, name(l, "mlp"), stats.mlpDim(l), offset);
            offset = entry(header, name(l, "attn"), stats.attnDim(l), offset);
            if (stats.hasSensitivity()) {
                offset = vectorEntry(header, sensitivityName(l, "attn"), stats.attnOutputSensitivity()[l].length, offset);
                offset = vectorEntry(header, sensitivityName(l, "mlp"), stats.mlpOutputSensitivity()[l].length, offset);
            }
        }
        byte[] json = padded(header.toString().getBytes(StandardCharsets.UTF_8));
        AtomicFiles.write(file, raw -> {
            OutputStream out = new BufferedOutputStream(raw, 1 << 20);
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length).array());
            out.write(json);
            ByteBuffer row = ByteBuffer.allocate(8 * 4096).order(ByteOrder.LITTLE_ENDIAN);
            for (int l = 0; l < stats.numLayers(); l++) {
                writeDoubles(out, row, stats.mlp()[l]);
                writeDoubles(out, row, stats.attn()[l]);
                if (stats.hasSensitivity()) {
                    writeDoubles(out, row, stats.attnOutputSensitivity()[l]);
                    writeDoubles(out, row, stats.mlpOutputSensitivity()[l]);
                }
            }
            out.flush();
        });
    }

    public static Contents read(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new HfpruneException("statistics file " + file + " does not exist");
        }
        try (InputStream raw = Files.newInputStream(file); DataInputStream in = new DataInputStream(raw)) {
            long size = Files.size(file);
            byte[] lengthBytes = in.readNBytes(8);
            long headerLength = lengthBytes.length < 8 ? -1 : ByteBuffer.wrap(lengthBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
            if (headerLength <= 0 || headerLength > size - 8 || headerLength > 100_000_000) {
                throw new HfpruneException(file + " is not a statistics file written by hfprune score --stats (bad header length)");
            }
            JsonNode header = JSON.readTree(in.readNBytes((int) headerLength));
            JsonNode meta = header == null ? null : header.get("__metadata__");
            if (meta == null || !FORMAT.equals(meta.path("format").asText())) {
                throw new HfpruneException(file + " is not a statistics file written by hfprune score --stats (format " + FORMAT + ")");
            }
            boolean sensitivity = header.has(sensitivityName(0, "mlp"));
            int layers = (header.size() - 1) / (sensitivity ? 4 : 2);
            long[] mlpSides = new long[layers];
            long[] attnSides = new long[layers];
            long[] hidden = new long[layers];
            long expected = 0;
            for (int l = 0; l < layers; l++) { // the whole layout is checked before any data is read
                mlpSides[l] = side(file, header, name(l, "mlp"), expected);
                expected += 8 * mlpSides[l] * mlpSides[l];
                attnSides[l] = side(file, header, name(l, "attn"), expected);
                expected += 8 * attnSides[l] * attnSides[l];
                if (sensitivity) {
                    hidden[l] = length(file, header, sensitivityName(l, "attn"), expected);
                    expected += 8 * hidden[l];
                    if (length(file, header, sensitivityName(l, "mlp"), expected) != hidden[l]) {
                        throw new HfpruneException(file + ": the output sensitivities of layer " + l + " differ in length");
                    }
                    expected += 8 * hidden[l];
                }
            }
            if (8 + headerLength + expected != size) {
                throw new HfpruneException(file + " has " + size + " bytes, but its header describes " + (8 + headerLength + expected)
                        + " (a truncated or damaged statistics file)");
            }
            double[][] mlp = new double[layers][];
            double[][] attn = new double[layers][];
            double[][] mlpOut = sensitivity ? new double[layers][] : null;
            double[][] attnOut = sensitivity ? new double[layers][] : null;
            for (int l = 0; l < layers; l++) {
                mlp[l] = readDoubles(in, mlpSides[l] * mlpSides[l]);
                attn[l] = readDoubles(in, attnSides[l] * attnSides[l]);
                if (sensitivity) {
                    attnOut[l] = readDoubles(in, hidden[l]);
                    mlpOut[l] = readDoubles(in, hidden[l]);
                }
            }
            GramStats stats = new GramStats(Long.parseLong(meta.path("tokens").asText()),
                    Long.parseLong(meta.path("windows").asText()), mlp, attn, mlpOut, attnOut);
            return new Contents(meta.path("model").asText(), meta.path("sha256").asText(),
                    Integer.parseInt(meta.path("seq_len").asText()), stats);
        } catch (IOException | NumberFormatException e) {
            throw new HfpruneException("cannot read statistics file " + file + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new HfpruneException("statistics file " + file + " is inconsistent: " + e.getMessage(), e);
        }
    }

    private static String name(int layer, String structure) {
        return "layers." + layer + "." + structure + "_gram";
    }

    private static String sensitivityName(int layer, String structure) {
        return "layers." + layer + "." + structure + "_out_sensitivity";
    }

    private static long vectorEntry(ObjectNode header, String name, int length, long offset) {
        long end = offset + 8L * length;
        ObjectNode t = header.putObject(name);
        t.put("dtype", "F64");
        t.putArray("shape").add(length);
        t.putArray("data_offsets").add(offset).add(end);
        return end;
    }

    /** The length of the F64 vector {@code name}, which must start at {@code expectedOffset}. */
    private static long length(Path file, JsonNode header, String name, long expectedOffset) {
        JsonNode t = header.get(name);
        if (t == null || !"F64".equals(t.path("dtype").asText()) || t.path("shape").size() != 1) {
            throw new HfpruneException(file + " lacks the float64 vector " + name);
        }
        long length = t.path("shape").get(0).asLong();
        long start = t.path("data_offsets").path(0).asLong(-1);
        long end = t.path("data_offsets").path(1).asLong(-1);
        if (length < 1 || length > Integer.MAX_VALUE || start != expectedOffset || end != start + 8 * length) {
            throw new HfpruneException(file + ": tensor " + name + " has an unexpected shape or place");
        }
        return length;
    }

    private static long entry(ObjectNode header, String name, int side, long offset) {
        long end = offset + 8L * side * side;
        ObjectNode t = header.putObject(name);
        t.put("dtype", "F64");
        t.putArray("shape").add(side).add(side);
        t.putArray("data_offsets").add(offset).add(end);
        return end;
    }

    /** The side of the square F64 tensor {@code name}, which must start at {@code expectedOffset}. */
    private static long side(Path file, JsonNode header, String name, long expectedOffset) {
        JsonNode t = header.get(name);
        if (t == null || !"F64".equals(t.path("dtype").asText()) || t.path("shape").size() != 2) {
            throw new HfpruneException(file + " lacks the float64 square tensor " + name);
        }
        long side = t.path("shape").get(0).asLong();
        long start = t.path("data_offsets").path(0).asLong(-1);
        long end = t.path("data_offsets").path(1).asLong(-1);
        if (side < 1 || side != t.path("shape").get(1).asLong() || side * side > Integer.MAX_VALUE
                || start != expectedOffset || end != start + 8 * side * side) {
            throw new HfpruneException(file + ": tensor " + name + " has an unexpected shape or place");
        }
        return side;
    }

    private static double[] readDoubles(DataInputStream in, long count) throws IOException {
        double[] out = new double[(int) count];
        ByteBuffer chunk = ByteBuffer.allocate(8 * 4096).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < out.length; ) {
            int n = Math.min(4096, out.length - i);
            in.readFully(chunk.array(), 0, 8 * n);
            for (int j = 0; j < n; j++) {
                out[i + j] = chunk.getDouble(8 * j);
            }
            i += n;
        }
        return out;
    }

    private static void writeDoubles(OutputStream out, ByteBuffer row, double[] values) throws IOException {
        for (int i = 0; i < values.length; ) {
            int n = Math.min(row.capacity() / 8, values.length - i);
            row.clear();
            for (int j = 0; j < n; j++) {
                row.putDouble(values[i + j]);
            }
            out.write(row.array(), 0, 8 * n);
            i += n;
        }
    }

    /** safetensors pads the header with spaces so that the data starts 8-byte aligned. */
    private static byte[] padded(byte[] json) {
        int pad = (8 - json.length % 8) % 8;
        byte[] out = new byte[json.length + pad];
        System.arraycopy(json, 0, out, 0, json.length);
        java.util.Arrays.fill(out, json.length, out.length, (byte) ' ');
        return out;
    }
}
