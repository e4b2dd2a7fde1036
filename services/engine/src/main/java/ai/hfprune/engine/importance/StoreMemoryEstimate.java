package ai.hfprune.engine.importance;

import ai.hfprune.engine.ProcessMemory;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.nn.DecoderLayer;
import ai.hfprune.engine.nn.LlamaModel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;

/**
 * How {@link ScoringMemory#AUTO} chooses: the bytes a batch scored with {@link ScoringMemory#STORE} holds, counted from
 * what each layer's {@link LayerPass} keeps for its backward pass, against the memory available when the batch starts.
 *
 * <p>Per token and layer, in elements: 2 × hidden (the layer's input and h_mid), 2 × the query width (q after RoPE and
 * the attention output O), 2 × the key/value width (k after RoPE and v), heads × T for the attention probabilities,
 * and 4 × intermediate (A, silu(gate) and up ⊙ silu'(gate), which the MLP's backward pass reads, and one more for the
 * forward pass's transients); Qwen3's q/k norms keep q and k before them as well. The head is computed over chunks of
 * positions in every mode ({@link ChunkedHead}): about 4 × its chunk's logits at a time. Against measurements (README,
 * "Scoring memory": peak RSS of {@code store} less that of {@code recompute}, each in a process of its own): 672 MiB on
 * the synthetic bench model, 8 windows of 256, where the difference was 378 MiB; 3,086 MiB on 4 layers of TinyLlama's
 * shape at T = 2048, where it was 2,085 ({@code recompute} holds one layer's pass itself). The estimate errs high.
 */
public final class StoreMemoryEstimate {

    /** STORE only when this many times the estimate fits in {@link #AVAILABLE_SHARE} of the available memory. */
    static final double SAFETY = 1.5;
    static final double AVAILABLE_SHARE = 0.5;

    private StoreMemoryEstimate() {
    }

    /** Bytes the layers' passes hold for one batch of {@code windows} windows of {@code seqLen} tokens in STORE mode. */
    public static long bytes(LlamaModel model, int windows, int seqLen) {
        ModelConfig c = model.config();
        int headDim = c.headDim();
        double perToken = 0;
        for (DecoderLayer layer : model.layers()) {
            int heads = layer.numHeads(headDim);
            double query = (double) heads * headDim;
            double keyValue = (double) layer.numKeyValueHeads(headDim) * headDim;
            double qkNorms = layer.qNorm() != null ? query + keyValue : 0;
            perToken += 2.0 * c.hiddenSize() + 2.0 * query + 2.0 * keyValue + qkNorms + (double) heads * seqLen
                    + 4.0 * layer.intermediateSize();
        }
        double tokens = (double) windows * seqLen;
        double head = 4.0 * Math.min(tokens * c.vocabSize(), ChunkedHead.defaultChunkElements(c.vocabSize()));
        return (long) ((perToken * tokens + head) * elementBytes(model));
    }

    private static int elementBytes(LlamaModel model) {
        return model.dataType() == ai.djl.ndarray.types.DataType.FLOAT64 ? 8 : 4;
    }

    /** The mode AUTO runs a batch in, given the bytes available now. */
    static ScoringMemory choose(long storeBytes, OptionalLong available) {
        if (available.isEmpty()) {
            return ScoringMemory.RECOMPUTE; // nothing to judge by: the mode whose memory is bounded
        }
        return SAFETY * storeBytes <= AVAILABLE_SHARE * available.getAsLong() ? ScoringMemory.STORE : ScoringMemory.RECOMPUTE;
    }

    /**
     * The memory this process can still take: Linux's MemAvailable, and under a cgroup v2 limit the room left below it
     * (a container's limit, which MemAvailable does not see), the smaller of the two; empty where neither is known.
     */
    public static OptionalLong availableBytes() {
        OptionalLong meminfo = ProcessMemory.procFieldBytes(Path.of("/proc/meminfo"), "MemAvailable:"); // empty where not Linux
        OptionalLong cgroup = cgroupRoom(Path.of("/sys/fs/cgroup"));
        if (cgroup.isPresent() && (meminfo.isEmpty() || cgroup.getAsLong() < meminfo.getAsLong())) {
            return cgroup;
        }
        return meminfo;
    }

    /** memory.max − memory.current of the cgroup v2 at {@code dir}; empty without a limit. */
    static OptionalLong cgroupRoom(Path dir) {
        try {
            String max = Files.readString(dir.resolve("memory.max")).trim();
            if (max.equals("max")) {
                return OptionalLong.empty();
            }
            long current = Long.parseLong(Files.readString(dir.resolve("memory.current")).trim());
            return OptionalLong.of(Math.max(0, Long.parseLong(max) - current));
        } catch (IOException | RuntimeException e) {
            return OptionalLong.empty();
        }
    }
}
