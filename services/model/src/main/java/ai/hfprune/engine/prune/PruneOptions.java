package ai.hfprune.engine.prune;

import ai.hfprune.engine.HfpruneException;

import java.util.Collections;
import java.util.Set;
import java.util.TreeSet;

/**
 * What to prune.
 *
 * @param mlpRatio        fraction of MLP neurons removed, in [0, 1)
 * @param attnRatio       fraction of attention removed, in [0, 1), in whole KV groups (a KV head with its query heads)
 * @param allocation      uniform (same width per layer) or global (one ranking across layers)
 * @param minKeepFraction global allocation only: each layer keeps at least this fraction of its width (and at least
 *                        one neuron and one KV group)
 * @param roundTo         kept MLP widths are rounded to a multiple of this (hardware-friendly shapes); 1 = exact
 * @param skipLayers      layers left untouched
 */
public record PruneOptions(double mlpRatio, double attnRatio, Allocation allocation, double minKeepFraction, int roundTo,
                           Set<Integer> skipLayers) {

    public static final double DEFAULT_MIN_KEEP_FRACTION = 0.1;

    public PruneOptions {
        requireRatio("--mlp-ratio", mlpRatio);
        requireRatio("--attn-ratio", attnRatio);
        if (allocation == null) {
            throw new HfpruneException("no allocation given (uniform or global)");
        }
        if (!(minKeepFraction >= 0 && minKeepFraction <= 1)) {
            throw new HfpruneException("--min-keep must be in [0, 1], got " + minKeepFraction);
        }
        if (roundTo < 1) {
            throw new HfpruneException("--round-to must be at least 1, got " + roundTo);
        }
        for (int layer : skipLayers) {
            if (layer < 0) {
                throw new HfpruneException("--skip-layers: layer " + layer + " is negative");
            }
        }
        skipLayers = Collections.unmodifiableSortedSet(new TreeSet<>(skipLayers)); // sorted for reports
    }

    /** Uniform allocation, no rounding, no skipped layers. */
    public static PruneOptions uniform(double mlpRatio, double attnRatio) {
        return new PruneOptions(mlpRatio, attnRatio, Allocation.UNIFORM, DEFAULT_MIN_KEEP_FRACTION, 1, Set.of());
    }

    public PruneOptions withAllocation(Allocation a) {
        return new PruneOptions(mlpRatio, attnRatio, a, minKeepFraction, roundTo, skipLayers);
    }

    public PruneOptions withRoundTo(int k) {
        return new PruneOptions(mlpRatio, attnRatio, allocation, minKeepFraction, k, skipLayers);
    }

    public PruneOptions withSkipLayers(Set<Integer> layers) {
        return new PruneOptions(mlpRatio, attnRatio, allocation, minKeepFraction, roundTo, layers);
    }

    public PruneOptions withMinKeepFraction(double f) {
        return new PruneOptions(mlpRatio, attnRatio, allocation, f, roundTo, skipLayers);
    }

    public boolean skips(int layer) {
        return skipLayers.contains(layer);
    }

    private static void requireRatio(String name, double r) {
        if (!(r >= 0 && r < 1)) { // also rejects NaN
            throw new HfpruneException(name + " must be in [0, 1) (the fraction removed), got " + r);
        }
    }
}
