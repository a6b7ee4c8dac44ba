#!/usr/bin/env bash
# Issue 15's scale target on the real path: one metrics-server (in-memory
# storage, history in memory) holding the 300,000 series of
# bench/rules_scale.hpp (300 instances x 1,000 metrics), backfilled by remote
# write with 30 minutes of samples at 15 s (bench/rules_feed), then fed live
# (one sample per series every 15 s, 150 staggered requests of 2,000 series),
# plus AGENTS labelled metrics-loadgen agents for the liveness series, while
# it evaluates the 1,000 rules of rules_scale.hpp (10 groups of 100, every
# INTERVAL). After the backfill, every INTERVAL for CYCLES cycles, prints the
# groups' evaluationTime from /api/v1/rules (their sum is one cycle), then
# the mean group duration from /metrics
# (metrics_server_rule_group_duration_seconds) over the same cycles, the
# series count and the server's CPU and RSS, and the agents' request latency
# (metrics-loadgen's p50/p99/p99.9 over the whole run). WITH_RULES=0 runs the same
# load without the rules: the ingest latency to compare against. LIVE_FEED=0
# leaves out the live remote-write feed (the agents alone after the backfill).
#   bench/compare/rules_scale.sh          # CYCLES=6 INTERVAL=15 AGENTS=100 WITH_RULES=1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${SERVER:-$root/build/release/apps/metrics-server/metrics-server}
lg=${LOADGEN:-$root/build/release/apps/metrics-loadgen/metrics-loadgen}
feed=${FEED:-$root/build/release/bench/rules_feed}
CYCLES=${CYCLES:-6}
INTERVAL=${INTERVAL:-15}
AGENTS=${AGENTS:-100}
WITH_RULES=${WITH_RULES:-1}
LIVE_FEED=${LIVE_FEED:-1}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
port=$(free_port)
"$feed" --rules "$tmp/rules.yml" --interval "${INTERVAL}s"
rule_args=()
[ "$WITH_RULES" = 1 ] && rule_args=(--rules "$tmp/rules.yml")
$bin -a 127.0.0.1:$port -f "" --history-dir "" --history-max-bytes 4GiB --log-level warn \
  "${rule_args[@]}" ${SERVER_ARGS:-} >"$tmp/server.log" 2>&1 & spid=$!; pids+=($spid)
for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$port/ping && break; sleep 0.1; done
kill -0 "$spid" 2>/dev/null || { echo "the server did not start:"; cat "$tmp/server.log"; exit 1; }
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
"$feed" --url http://127.0.0.1:$port/api/v1/write --backfill-minutes 30 --threads 2
# The agents' instances and series are made by a short warm-up run, and the
# backfill is given SETTLE seconds to reach the history, so that the
# measured run's latency is that of steady ingest.
$lg -a 127.0.0.1:$port -n "$AGENTS" -r 1 -d 5s --no-verify >/dev/null 2>&1 || true
sleep "${SETTLE:-15}"
if [ "$LIVE_FEED" = 1 ]; then
  "$feed" --url http://127.0.0.1:$port/api/v1/write --backfill-minutes 0 \
    --live-seconds $(( (CYCLES + 2) * INTERVAL + 5 )) >"$tmp/live.json" & pids+=($!)
fi
$lg -a 127.0.0.1:$port -n "$AGENTS" -r 1 -d "$(( (CYCLES + 2) * INTERVAL + 5 ))s" --no-verify \
  --json true >"$tmp/loadgen.json" 2>/dev/null & lgpid=$!; pids+=($lgpid)
metric_sums() {  # -> "sum count" of the group duration histogram over every group
  curl -s http://127.0.0.1:$port/metrics | awk '
    /^metrics_server_rule_group_duration_seconds_sum/ {s += $2}
    /^metrics_server_rule_group_duration_seconds_count/ {c += $2}
    END {printf "%.6f %d\n", s, c}'
}
cpu() { awk '{print $14 + $15}' /proc/$spid/stat; }
sleep "$INTERVAL"  # a full cycle over the backfilled history
read -r s0 c0 < <(metric_sums); cpu0=$(cpu); t0=$(date +%s.%N)
for cycle in $(seq "$CYCLES"); do
  sleep "$INTERVAL"
  [ "$WITH_RULES" = 1 ] || continue
  curl -s http://127.0.0.1:$port/api/v1/rules | python3 -c '
import json, sys
groups = json.load(sys.stdin)["data"]["groups"]
times = [g["evaluationTime"] for g in groups]
rules = sum(len(g["rules"]) for g in groups)
alerts = sum(len(r.get("alerts", [])) for g in groups for r in g["rules"])
bad = sum(1 for g in groups for r in g["rules"] if r["health"] != "ok")
print("cycle %s: %d groups, %d rules, cycle (sum of groups) %.3f s, slowest group %.3f s, active alerts %d, unhealthy rules %d"
      % (sys.argv[1], len(groups), rules, sum(times), max(times), alerts, bad))' "$cycle"
done
read -r s1 c1 < <(metric_sums); cpu1=$(cpu); t1=$(date +%s.%N)
[ "$WITH_RULES" = 1 ] && python3 -c '
import sys
s0, c0, s1, c1, g = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), 10
n = c1 - c0
print("from /metrics: %d group evaluations, mean %.3f s per group, %.3f s per cycle of %d groups" % (n, (s1 - s0) / n, (s1 - s0) / n * g, g))' "$s0" "$c0" "$s1" "$c1"
hz=$(getconf CLK_TCK)
echo "server CPU over the cycles: $(python3 -c "print('%.2f' % ((($cpu1 - $cpu0) / $hz) / ($t1 - $t0)))") cores; RSS $(awk '/VmRSS/ {print $2 " kB"}' /proc/$spid/status)"
curl -s "http://127.0.0.1:$port/api/v1/query?query=count(%7B__name__%3D~%22g_.%2B%7Cc_.%2B%22%7D)" |
  python3 -c 'import json,sys; print("series g_*/c_*:", json.load(sys.stdin)["data"]["result"][0]["value"][1])'
wait "$lgpid" || true
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_ms"]
print("agents (rules %s): %s requests, latency p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms"
      % (sys.argv[2], r.get("acknowledged", "?"), l["p50"], l["p99"], l["p999"], l["max"]))' "$tmp/loadgen.json" "$WITH_RULES"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
