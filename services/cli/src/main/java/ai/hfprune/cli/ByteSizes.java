package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;

import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Sizes written as transformers' {@code max_shard_size} is: "2GB" (decimal units), "1GiB" (binary units) or bytes. */
final class ByteSizes {
    private ByteSizes() {
    }

    private static final Pattern SIZE = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*([kmgt]i?b|b)?");
    private static final Map<String, Long> UNITS = Map.of(
            "b", 1L,
            "kb", 1_000L, "mb", 1_000_000L, "gb", 1_000_000_000L, "tb", 1_000_000_000_000L,
            "kib", 1L << 10, "mib", 1L << 20, "gib", 1L << 30, "tib", 1L << 40);

    static long parse(String option, String text) {
        Matcher m = SIZE.matcher(text.trim().toLowerCase(Locale.ROOT));
        if (!m.matches()) {
            throw new HfpruneException(option + ": cannot read '" + text + "' as a size (use e.g. 2GB, 500MB, 1GiB or bytes)");
        }
        long unit = m.group(2) == null ? 1 : UNITS.get(m.group(2));
        long bytes = (long) (Double.parseDouble(m.group(1)) * unit);
        if (bytes <= 0) {
            throw new HfpruneException(option + " must be positive, got '" + text + "'");
        }
        return bytes;
    }
}
