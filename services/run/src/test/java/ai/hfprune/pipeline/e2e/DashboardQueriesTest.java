package ai.hfprune.pipeline.e2e;

import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The PromQL name extraction the dashboard test relies on. */
class DashboardQueriesTest {

    @Test
    void findsMetricNamesAndNothingElse() {
        assertEquals(Set.of("hfprune_scorer_batch_seconds_bucket"), DashboardQueries.metricNames(
                "histogram_quantile(0.95, sum by (le) (rate(hfprune_scorer_batch_seconds_bucket{instance=\"a b\"}[5m])))"));
        assertEquals(Set.of("a_total", "b"), DashboardQueries.metricNames("sum by (service) (rate(a_total[1m])) * 60 / on (x) b"));
    }
}
