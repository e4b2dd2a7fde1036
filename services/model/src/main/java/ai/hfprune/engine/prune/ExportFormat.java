package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.io.GgufFile.GgmlType;

import java.util.Locale;

/** What a pruned model is saved as: a Hugging Face directory, a GGUF file for llama.cpp, or both side by side. */
public enum ExportFormat {
    HF, GGUF, BOTH;

    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    public boolean writesHf() {
        return this != GGUF;
    }

    public boolean writesGguf() {
        return this != HF;
    }

    public static ExportFormat parse(String s) {
        for (ExportFormat f : values()) {
            if (f.id().equalsIgnoreCase(s.trim())) {
                return f;
            }
        }
        throw new HfpruneException("unknown format '" + s + "' (choose hf, gguf or both)");
    }

    /** The GGUF tensor types the export writes. */
    public static GgmlType parseGgufType(String s) {
        return switch (s.trim().toLowerCase(Locale.ROOT)) {
            case "f32" -> GgmlType.F32;
            case "f16" -> GgmlType.F16;
            case "q8_0" -> GgmlType.Q8_0;
            default -> throw new HfpruneException("unknown GGUF tensor type '" + s + "' (choose f32, f16 or q8_0)");
        };
    }
}
