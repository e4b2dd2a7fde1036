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
 * How {@link ScoringMemory#AUTO} chooses: the bytes autograd holds when a batch is scored with
 * {@link ScoringMemory#STORE}, counted from what {@code LlamaModel}'s operators save for their backward pass, against
 * the memory available when the batch starts.
 *
 * <p>Per token and layer, in elements: about 4 × hidden for the two RMSNorms (each normalized input and its scaled
 * copy), 8 × the query width for q (before and after RoPE, its rotated half), the repeated k and v, the attention
 * output, its probe sum and its contiguous copy), 3 × the key/value width for k and v before they are repeated,
 * heads × T for the attention probabilities (softmax's output, which the product with v saves too), and 6 × intermediate
 * for the MLP (gate, its sigmoid, their product, up, A and A + probe). The head adds about 5 × vocabulary per token
 * (logits, log-softmax, softmax and the entropy's products). Against measurements (README, Performance): on the
 * synthetic bench model it counts 1,256 MiB for 8 windows of 256, where {@code store}'s peak RSS was 1,400 MiB above
 * {@code recompute}'s (glibc's malloc defaults); on 4 layers of TinyLlama's shape at T = 2048, 5,178 MiB where it was
 * 4,277 MiB. {@link #SAFETY} covers the difference.
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
            long keyValue = (long) layer.numKeyValueHeads(headDim) * headDim;
            perToken += 4.0 * c.hiddenSize() + 8.0 * query + 3.0 * keyValue + (double) heads * seqLen
                    + 6.0 * layer.intermediateSize();
        }
        perToken += 2.0 * c.hiddenSize() + 5.0 * c.vocabSize();
        return (long) (perToken * windows * seqLen * elementBytes(model));
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
