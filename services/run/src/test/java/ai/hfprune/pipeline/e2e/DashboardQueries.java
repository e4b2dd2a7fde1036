package ai.hfprune.pipeline.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The metric names that the Grafana dashboard's PromQL queries read. */
final class DashboardQueries {

    private static final Set<String> KEYWORDS = Set.of("by", "without", "on", "ignoring", "group_left", "group_right",
            "and", "or", "unless", "bool", "offset");
    private static final Pattern IDENTIFIER = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*");

    private DashboardQueries() {
    }

    static Path dashboard() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path p = dir.resolve("infra/grafana/dashboards/hfprune.json");
            if (Files.exists(p)) {
                return p;
            }
        }
        throw new IllegalStateException("infra/grafana/dashboards/hfprune.json not found above " + Path.of("").toAbsolutePath());
    }

    static Set<String> metricNames(Path dashboard) throws IOException {
        Set<String> names = new TreeSet<>();
        for (JsonNode panel : new ObjectMapper().readTree(dashboard.toFile()).path("panels")) {
            for (JsonNode target : panel.path("targets")) {
                names.addAll(metricNames(target.path("expr").asText()));
            }
        }
        return names;
    }

    /** Identifiers of a PromQL expression that are neither functions, keywords, label names nor durations. */
    static Set<String> metricNames(String expr) {
        String s = expr.replaceAll("\"[^\"]*\"", "")          // label values
                .replaceAll("\\{[^}]*}", "")                  // label matchers
                .replaceAll("\\[[^]]*]", "")                  // range durations
                .replaceAll("\\b(by|without|on|ignoring)\\s*\\([^)]*\\)", ""); // grouping label lists
        Set<String> out = new TreeSet<>();
        Matcher m = IDENTIFIER.matcher(s);
        while (m.find()) {
            String name = m.group();
            int after = m.end();
            while (after < s.length() && s.charAt(after) == ' ') {
                after++;
            }
            boolean isFunction = after < s.length() && s.charAt(after) == '(';
            if (!isFunction && !KEYWORDS.contains(name)) {
                out.add(name);
            }
        }
        return out;
    }
}
