#!/usr/bin/env bash
# Ingest latency with and without rule evaluation (issue 15): a fresh
# in-memory server per row, 200 labelled agents paced at 10 requests/s each
# (metrics-loadgen, 8 s, verified), rounds alternating the two variants. The
# rules (rules_ingest_p99.yml) are 20 recording and 20 alerting rules that
# each read every series ({__name__=~".+"}) once a second.
#   bench/compare/rules_ingest_p99.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${SERVER:-$root/build/release/apps/metrics-server/metrics-server}
lg=${LOADGEN:-$root/build/release/apps/metrics-loadgen/metrics-loadgen}
for round in 1 2 3; do
  for variant in norules rules; do
    extra=(); [[ $variant == rules ]] && extra=(--rules "$here/rules_ingest_p99.yml")
    $bin -a 127.0.0.1:18300 -f "" --history-dir "" --log-level warn "${extra[@]}" & pid=$!
    sleep 1
    out=$($lg -a 127.0.0.1:18300 -n 200 -r 10 -d 8s --json 2>/dev/null)
    echo "$round $variant $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); l=d["latency_ms"]; print("req_per_s %.0f p50 %.3f ms p99 %.3f ms p999 %.3f ms verify %s" % (d["requests_per_s"], l["p50"], l["p99"], l["p999"], d["verify"]["ok"]))' 2>/dev/null || echo "$out" | head -c 300)"
    kill -TERM $pid; wait $pid
  done
done
