package ai.hfprune.pipeline.aggregator;

import ai.hfprune.schemas.CoverageSnapshot;
import ai.hfprune.schemas.LayerScores;
import ai.hfprune.schemas.PruneResult;
import ai.hfprune.schemas.PruneStatus;

import java.util.HashMap;
import java.util.List;

/**
 * How large a snapshot with every layer's sums is as a record, and the answer to a version too large to send. A
 * 7B model's snapshot is ~1 MB; a limit set low ({@code record.max.bytes}) stands in for a model whose is not.
 */
final class SnapshotSize {

    /** Room for the record's key, the snapshot's other fields and a trigger's around it. */
    private static final int OVERHEAD = 4096;

    private SnapshotSize() {
    }

    /**
     * An upper bound of the snapshot's (and its trigger's) record size: Avro writes a double in 8 bytes; each layer adds
     * at most a few bytes of array counts and its number.
     */
    static long bound(CoverageSnapshot snapshot) {
        long bytes = OVERHEAD;
        for (LayerScores layer : snapshot.getLayers()) {
            bytes += 8L * (layer.getMlp().size() + layer.getHeads().size()) + 32;
        }
        return bytes;
    }

    /** The FAILED result of a version whose snapshot of {@code bytes} exceeds {@code limit}. */
    static PruneResult refusal(CoverageSnapshot cov, long bytes, int limit) {
        return PruneResult.newBuilder().setModel(cov.getModel()).setCriterion(cov.getCriterion()).setVersion(cov.getVersion())
                .setStatus(PruneStatus.FAILED).setTokens(cov.getTokens()).setBatches(cov.getBatches())
                .setMlpRatio(0).setAttnRatio(0).setAllocation("").setKept(List.of()).setParamsBefore(0).setParamsAfter(0)
                .setMetrics(new HashMap<>()).setKeptChanged(0).setOutputPath("").setCompensation("")
                .setError("the aggregator refused version " + cov.getVersion() + ": its snapshot with every layer's sums takes up to "
                        + bytes + " bytes, more than record.max.bytes (" + limit + "); no trigger was sent")
                .build();
    }
}
