package ai.hfprune.engine.io;

import java.util.List;

/**
 * A GGUF metadata value with its declared type. The type matters on writing: llama.cpp checks it strictly (a
 * {@code llama.block_count} stored as INT32 instead of UINT32 is refused), and a tokenizer carried over from a GGUF
 * input must keep the exact types it came with.
 *
 * @param type        one of the {@code GGUF_TYPE_*} ids below
 * @param elementType for an ARRAY, its elements' type (an ARRAY of arrays is read, not written); otherwise -1
 * @param value       as {@link GgufFile} reads it: Integer for 8/16-bit and INT32, Long for UINT32 and the 64-bit
 *                    integers, Float, Double, Boolean, String, or a List of such for an ARRAY
 */
public record GgufValue(int type, int elementType, Object value) {

    public static final int UINT8 = 0;
    public static final int INT8 = 1;
    public static final int UINT16 = 2;
    public static final int INT16 = 3;
    public static final int UINT32 = 4;
    public static final int INT32 = 5;
    public static final int FLOAT32 = 6;
    public static final int BOOL = 7;
    public static final int STRING = 8;
    public static final int ARRAY = 9;
    public static final int UINT64 = 10;
    public static final int INT64 = 11;
    public static final int FLOAT64 = 12;

    public GgufValue {
        if (type < UINT8 || type > FLOAT64 || (type == ARRAY) != (elementType >= 0) || elementType > FLOAT64) {
            throw new ai.hfprune.engine.HfpruneException("GGUF value of type " + type + " with elements of type "
                    + elementType + " (corrupt file?)");
        }
    }

    public static GgufValue u32(long v) {
        return new GgufValue(UINT32, -1, v);
    }

    public static GgufValue f32(double v) {
        return new GgufValue(FLOAT32, -1, (float) v);
    }

    public static GgufValue string(String v) {
        return new GgufValue(STRING, -1, v);
    }

    public static GgufValue bool(boolean v) {
        return new GgufValue(BOOL, -1, v);
    }

    /** An INT32 array, as llama.cpp's converters write per-layer widths. */
    public static GgufValue i32s(int[] values) {
        return new GgufValue(ARRAY, INT32, java.util.Arrays.stream(values).boxed().toList());
    }

    @SuppressWarnings("unchecked")
    public List<Object> list() {
        return (List<Object>) value;
    }
}
