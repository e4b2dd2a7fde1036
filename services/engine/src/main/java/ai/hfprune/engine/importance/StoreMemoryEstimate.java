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
 * what each layer's {@link LayerPass} keeps and what autograd saves in it, against the memory available when the batch
 * starts.
 *
 * <p>Per token and layer, in elements: 3 × hidden (the layer's input, h_mid and the MLP's normalized input), 4 × the
 * query width (q after RoPE, k and v repeated to every query head, which the attention's products save, and the
 * attention output O), heads × T for the attention probabilities (softmax's output, which the product with v saves too),
 * and 4 × intermediate (A, silu(gate) and up ⊙ silu'(gate), which the MLP's backward pass reads, and one more for the
 * forward pass's transients). The head is computed over chunks of positions in every mode ({@link ChunkedHead}): about 4
 * × its chunk's logits at a time. Against measurements (README, "Scoring memory": peak RSS of {@code store} less that
 * of {@code recompute}, each in a process of its own, on tcmalloc): 832 MiB on the synthetic bench model, 8 windows of
 * 256, where the difference was 909 MiB; 3,328 MiB on 4 layers of TinyLlama's shape at T = 2048, where it was 2,311
 * ({@code recompute} holds one layer's pass itself). {@link #SAFETY} covers the difference.
 */
public final class StoreMemoryEstimate {

    /** STORE only when this many times the estimate fits in {@link #AVAILABLE_SHARE} of the available memory. */
    static final double SAFETY = 1.5;
    static final double AVAILABLE_SHARE = 0.5;

    private StoreMemoryEstimate() {
    }

    /** Bytes autograd holds for one batch of {@code windows} windows of {@code seqLen} tokens in STORE mode. */
    public static long bytes(LlamaModel model, int windows, int seqLen) {
        ModelConfig c = model.config();
        int headDim = c.headDim();
        double perToken = 0;
        for (DecoderLayer layer : model.layers()) {
            int heads = layer.numHeads(headDim);
            long query = (long) heads * headDim;
            perToken += 3.0 * c.hiddenSize() + 4.0 * query + (double) heads * seqLen + 4.0 * layer.intermediateSize();
        }
        double tokens = (double) windows * seqLen;
        double head = 4.0 * Math.min(tokens * c.vocabSize(), ChunkedHead.DEFAULT_CHUNK_ELEMENTS);
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
