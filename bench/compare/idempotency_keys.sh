#!/usr/bin/env bash
# In-memory ingest with and without idempotency keys, in the same run
# (issue 18: keys may cost at most 5% of the throughput).
#
# One metrics-server (memory storage) on a free loopback port; metrics-loadgen
# runs alternate between plain requests and --idempotency-keys (labelled
# 29-metric envelopes, gzip, closed loop), PAIRS pairs of DURATION s each,
# and the order inside a pair alternates too, so drift in the machine's load
# falls on both sides. For each run: requests/s, and the server's CPU time
# per acknowledged request (utime+stime from /proc/PID/stat around the run),
# the steadier figure on a shared machine. Prints one line per run and the
# medians and their ratio.
#
#   bench/compare/idempotency_keys.sh [--server BIN] [--loadgen BIN]
#       [--pairs 5] [--duration 5] [--agents 64]
set -euo pipefail
unset ADDRESS DATABASE_DSN FILE_STORAGE_PATH STORE_INTERVAL RESTORE KEY CONFIG LOG_LEVEL

SERVER=build/release/apps/metrics-server/metrics-server
LOADGEN=build/release/apps/metrics-loadgen/metrics-loadgen
PAIRS=5 DURATION=5 AGENTS=64
while [[ $# -gt 0 ]]; do
  case $1 in
    --server) SERVER=$2 ;;
    --loadgen) LOADGEN=$2 ;;
    --pairs) PAIRS=$2 ;;
    --duration) DURATION=$2 ;;
    --agents) AGENTS=$2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/idem-bench.XXXXXX")
SERVER_PID=''
cleanup() {
  [[ -z $SERVER_PID ]] || { kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT

"$SERVER" -a 127.0.0.1:0 -f "" -r=false --history-dir "" --access-log=false --log-level warn \
  2>"$WORK/server.log" &
SERVER_PID=$!
PORT=''
for _ in $(seq 1 300); do
  PORT=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$WORK/server.log" | head -n1)
  [[ -n $PORT ]] && break
  sleep 0.05
done
if [[ -z $PORT ]]; then
  # --log-level warn may hide the line: fall back to an info-level start.
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  "$SERVER" -a 127.0.0.1:0 -f "" -r=false --history-dir "" --access-log=false --log-level info \
    2>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    PORT=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$WORK/server.log" | head -n1)
    [[ -n $PORT ]] && break
    sleep 0.05
  done
fi
[[ -n $PORT ]] || { echo "the server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
field() { grep -o "\"$1\":[^,}]*" "$WORK/run.json" | head -n1 | cut -d: -f2; }

echo "# $(date -u +%FT%TZ) load=$(cut -d' ' -f1-3 /proc/loadavg) agents=$AGENTS duration=${DURATION}s"
echo "# run keys requests_per_s server_cpu_us_per_request in_doubt mismatches"
: >"$WORK/plain" ; : >"$WORK/keyed"
for ((p = 1; p <= PAIRS; p++)); do
  if ((p % 2)); then order="plain keyed"; else order="keyed plain"; fi
  for kind in $order; do
    flags=()
    [[ $kind == keyed ]] && flags=(--idempotency-keys)
    c0=$(cpu_ticks)
    "$LOADGEN" -a "127.0.0.1:$PORT" -n "$AGENTS" -d "${DURATION}s" -m batch --gzip --json \
      --run-id "ib$$_${p}_${kind}_" "${flags[@]}" >"$WORK/run.json" 2>"$WORK/run.err" ||
      { echo "loadgen failed:" >&2; cat "$WORK/run.err" "$WORK/run.json" >&2; exit 1; }
    c1=$(cpu_ticks)
    rps=$(field requests_per_s) acked=$(field acknowledged)
    us=$(awk -v t=$((c1 - c0)) -v hz="$TICKS" -v n="$acked" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    echo "$p $kind $rps $us $(field in_doubt) $(field mismatches)"
    echo "$rps $us" >>"$WORK/$kind"
  done
done
median() { sort -n -k"$2" "$1" | awk -v k="$2" '{ v[NR] = $k } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
PR=$(median "$WORK/plain" 1) KR=$(median "$WORK/keyed" 1)
PC=$(median "$WORK/plain" 2) KC=$(median "$WORK/keyed" 2)
echo "# median plain:  $PR requests/s, $PC us CPU/request"
echo "# median keyed:  $KR requests/s, $KC us CPU/request"
awk -v a="$PR" -v b="$KR" -v c="$PC" -v d="$KC" \
  'BEGIN { printf "# keyed/plain: throughput %.3f, server CPU per request %.3f\n", b / a, d / c }'
