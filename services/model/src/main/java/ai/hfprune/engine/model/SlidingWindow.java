package ai.hfprune.engine.model;

import java.util.List;
import java.util.stream.IntStream;

/**
 * Sliding-window attention (Mistral's {@code sliding_window}; Qwen2/Qwen3's when {@code use_sliding_window} is true):
 * in a layer that uses it, query position i attends to key position j iff 0 ≤ i - j < {@code size}, as transformers'
 * {@code masking_utils.sliding_window_overlay} ({@code kv_idx > q_idx - sliding_window}) on top of the causal mask.
 *
 * @param size   the window in tokens; 0 for none
 * @param layers the layers that use it, ascending (all of Mistral's; Qwen's from max_window_layers on)
 */
public record SlidingWindow(int size, List<Integer> layers) {

    public static final SlidingWindow NONE = new SlidingWindow(0, List.of());

    public SlidingWindow {
        layers = List.copyOf(layers);
        if (size < 0 || (size == 0) != layers.isEmpty()) {
            throw new IllegalArgumentException("a sliding window needs a positive size and at least one layer, got size "
                    + size + " for layers " + layers);
        }
        for (int i = 0; i < layers.size(); i++) {
            if (layers.get(i) < 0 || (i > 0 && layers.get(i) <= layers.get(i - 1))) {
                throw new IllegalArgumentException("sliding-window layers must be distinct, ascending and >= 0: " + layers);
            }
        }
    }

    /** Layers {@code from} … {@code numLayers - 1}: transformers' rule for Qwen2/Qwen3 (i >= max_window_layers). */
    public static SlidingWindow fromLayer(int size, int from, int numLayers) {
        List<Integer> layers = IntStream.range(Math.max(0, from), numLayers).boxed().toList();
        return layers.isEmpty() ? NONE : new SlidingWindow(size, layers);
    }

    public boolean isActive() {
        return size > 0;
    }

    public boolean appliesTo(int layer) {
        return layers.contains(layer);
    }

    /** Whether a sequence of {@code length} tokens has a key the window hides from some query (length > size). */
    public boolean bitesAt(int length) {
        return isActive() && length > size;
    }
}
