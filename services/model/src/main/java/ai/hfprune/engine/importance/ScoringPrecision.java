package ai.hfprune.engine.importance;

import ai.hfprune.engine.HfpruneException;

import java.util.Locale;

/**
 * What scoring computes the decoder layers in (issue 12, item 4): the model's own type, or bfloat16.
 *
 * <p>BF16 runs the layer kernels on bfloat16 copies of the layers' weights, made once per model, and keeps every
 * activation and gradient of the layers in bfloat16, as HFPrune's reference code does; the LM head and its loss stay in
 * the model's type, and the Taylor sums are summed in float32 within a batch and float64 across batches; what Java
 * reads (the activation criterion's sums, the Gram statistics) gets float32 copies. DJL 0.36 aborts the JVM on any call
 * that names the bfloat16 type ({@code Bf16EngineTest}), so the copies are made, and the arrays stay, on the engine
 * side: Java holds them without reading their type. On CPUs with AVX-512 BF16 or AMX, libtorch's bfloat16 products run
 * on oneDNN, several times faster than float32 ones.
 */
public enum ScoringPrecision {
    /** The model's own type (float32 as loaded; float64 in tests). */
    MODEL("float32"),
    BF16("bf16");

    private final String id;

    ScoringPrecision(String id) {
        this.id = id;
    }

    /** As settings and {@code --dtype} name it: float32 or bf16. */
    public String id() {
        return id;
    }

    public static ScoringPrecision parse(String s) {
        String id = s.strip().toLowerCase(Locale.ROOT);
        for (ScoringPrecision p : values()) {
            if (p.id.equals(id)) {
                return p;
            }
        }
        throw new HfpruneException("unknown scoring type '" + s + "' (choose one of float32, bf16)");
    }
}
