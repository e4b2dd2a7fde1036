package ai.hfprune.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * An estimate of the CPU's float32 peak per core: SIMD lanes × FMA units × 2 FLOPs per FMA × clock. Lanes come from
 * /proc/cpuinfo's flags (16 with avx512f, 8 with avx2 and fma, else 4); two FMA units is an assumption (it holds for
 * the x86 server cores of the last decade; Zen 4 runs AVX-512 as two 256-bit halves, so there the figure is twice the
 * truth); the clock is the larger of /proc/cpuinfo's "cpu MHz" (a hypervisor's nominal value) and a short calibration
 * (a chain of dependent one-cycle integer operations, which boost clocks show in). A ceiling to read scoring against
 * beside the engine's own best matrix product, not a promise.
 */
record CpuPeak(String model, int lanes, String simd, int fmaUnits, double ghz, String clockSource) {

    static CpuPeak measure() {
        List<String> lines = cpuinfo();
        String model = field(lines, "model name", "unknown CPU");
        String flags = " " + field(lines, "flags", "") + " ";
        int lanes = flags.contains(" avx512f ") ? 16 : flags.contains(" avx2 ") && flags.contains(" fma ") ? 8 : 4;
        String simd = lanes == 16 ? "AVX-512" : lanes == 8 ? "AVX2+FMA" : "SSE";
        double nominal = parse(field(lines, "cpu MHz", "0")) / 1000;
        double calibrated = calibratedGhz();
        return calibrated > nominal ? new CpuPeak(model, lanes, simd, 2, calibrated, "calibrated")
                : new CpuPeak(model, lanes, simd, 2, nominal, "/proc/cpuinfo");
    }

    /** Float32 GFLOP/s of {@code cores} cores at this peak. */
    double gflops(int cores) {
        return cores * lanes * fmaUnits * 2 * ghz;
    }

    String describe() {
        return String.format(Locale.ROOT, "%s: %s (%d float32 lanes) x %d FMA units x 2 x %.2f GHz (%s) = %.1f GFLOP/s per core",
                model, simd, lanes, fmaUnits, ghz, clockSource, gflops(1));
    }

    /**
     * Cycles per second of a chain of dependent xor-shift steps: six one-cycle operations per iteration, none of which
     * can overlap the next, so iterations × 6 / seconds approximates the clock. Best of a few 20 ms runs.
     */
    static double calibratedGhz() {
        long x = 88172645463325252L;
        double best = 0;
        for (int run = 0; run < 8; run++) {
            int n = 2_000_000;
            long start = System.nanoTime();
            for (int i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >>> 7;
                x ^= x << 17;
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            best = Math.max(best, n * 6 / seconds / 1e9);
        }
        if (x == 42) { // keeps the loop's result alive so that it is not optimized away
            System.err.print("");
        }
        return best;
    }

    private static List<String> cpuinfo() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo"));
        } catch (IOException e) {
            return List.of();
        }
    }

    private static String field(List<String> lines, String name, String fallback) {
        for (String line : lines) {
            int colon = line.indexOf(':');
            if (colon > 0 && line.substring(0, colon).trim().equals(name)) {
                return line.substring(colon + 1).trim();
            }
        }
        return fallback;
    }

    private static double parse(String s) {
        try {
            return Double.parseDouble(s);
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
