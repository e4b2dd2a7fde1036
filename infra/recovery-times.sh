#!/usr/bin/env bash
# Measures recovery after kill -9 with every service as its own process (README, "Fast recovery"):
#   infra/recovery-times.sh [ROUNDS]
# A broker with an HTTP schema registry (`hfprune broker`, its own JVM), the
# aggregator, two scorers and a rate-limited sampler run as separate JVMs. Each round kill -9s the aggregator and
# restarts it at once with its instance.id and state.dir, and times until /coverage moves past the tokens it had;
# then kill -9s scorer-1, restarts it with its instance.id, and times until it has scored tokens again (its
# partitions are back). Build first: mvn -o -q -DskipTests package -pl services/cli -am
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-3}
work=$(mktemp -d /tmp/hfprune-recovery.XXXX)
java_opts=(-Xmx1g -XX:TieredStopAtLevel=1 -Dai.djl.offline=true -Dhfprune.root="$PWD" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn
  -Dorg.slf4j.simpleLogger.log.org.apache.kafka=error -Dorg.slf4j.simpleLogger.log.org.apache.kafka.streams.KafkaStreams=info
  -Dorg.slf4j.simpleLogger.showDateTime=true -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2> /dev/null || true; done; }
trap cleanup EXIT

java "${java_opts[@]}" -cp "services/cli/target/hfprune-cli-0.1.0-SNAPSHOT.jar:services/cli/target/lib/*" ai.hfprune.cli.Main \
  broker --port 19092 --registry-port 18081 --data-dir "$work/broker" > "$work/cluster.log" 2>&1 &
pids+=($!)
until curl -sf http://127.0.0.1:18081/subjects > /dev/null; do sleep 0.5; done
export HFPRUNE_BOOTSTRAP_SERVERS=127.0.0.1:19092
export HFPRUNE_SCHEMA_REGISTRY_URL=http://127.0.0.1:18081
export HFPRUNE_TOPIC_PREFIX=recovery. HFPRUNE_PRUNE_COMPENSATE=none HFPRUNE_CRITERIA=entropy HFPRUNE_MAX_WINDOWS=0
export HFPRUNE_COVERAGE_MIN_TOKENS=100000000 # no trigger: only coverage matters here

service() { # NAME PORT ARGS…: starts a service process, prints its pid
  local name=$1 port=$2; shift 2
  java "${java_opts[@]}" -cp "services/cli/target/hfprune-cli-0.1.0-SNAPSHOT.jar:services/cli/target/lib/*" ai.hfprune.cli.Main "$@" \
    --set metrics.port="$port" >> "$work/$name.log" 2>&1 &
  echo $!
}
ready() { until curl -sf "http://127.0.0.1:$1/health/ready" > /dev/null; do sleep 0.1; done; }
tokens() { curl -sf http://127.0.0.1:19401/coverage | python3 -c 'import json,sys; print(sum(v["tokens"] for v in json.load(sys.stdin).values()))' 2> /dev/null || echo -1; }
scored() { curl -sf http://127.0.0.1:19403/metrics | awk '/^hfprune_scorer_tokens_total/{print int($2)}' 2> /dev/null || echo 0; }
now() { date +%s.%N; }

agg=$(service aggregator 19401 aggregator --set instance.id=aggregator --set state.dir="$work/state"); pids+=($agg)
ready 19401
s1=$(service scorer-1 19403 scorer --set instance.id=scorer-1); pids+=($s1)
s2=$(service scorer-2 19404 scorer --set instance.id=scorer-2); pids+=($s2)
ready 19403; ready 19404
sampler=$(service sampler 19405 sampler --set sampler.rate.batches.per.second=4 --set instance.id=sampler); pids+=($sampler)
until [[ $(tokens) -gt 0 ]]; do sleep 0.5; done

printf '%-6s %-10s %14s %16s %s\n' round killed "s to ready" "s to work again" "(work again:)"
for round in $(seq 1 "$rounds"); do
  sleep 3
  before=$(tokens)
  kill -9 "$agg"; t0=$(now)
  agg=$(service aggregator 19401 aggregator --set instance.id=aggregator --set state.dir="$work/state"); pids+=($agg)
  ready 19401; t1=$(now)
  while [[ $(tokens) -le $before ]]; do sleep 0.2; done
  printf '%-6s %-10s %14.1f %16.1f %s\n' "$round" aggregator "$(echo "$t1 - $t0" | bc)" "$(echo "$(now) - $t0" | bc)" \
    "/coverage moves past the tokens before the kill"
  sleep 3
  kill -9 "$s1"; t0=$(now)
  s1=$(service scorer-1 19403 scorer --set instance.id=scorer-1); pids+=($s1)
  ready 19403; t1=$(now)
  while [[ $(scored) -le 0 ]]; do sleep 0.2; done
  printf '%-6s %-10s %14.1f %16.1f %s\n' "$round" scorer-1 "$(echo "$t1 - $t0" | bc)" "$(echo "$(now) - $t0" | bc)" \
    "the restarted scorer-1 has scored tokens again"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); logs in $work"
