#!/usr/bin/env bash
# The long versions of the fault tests, whose short versions ctest runs
# (label "faults"): many rounds of kill -9 under load in synchronous file
# mode, repeated PostgreSQL restarts under load, repeated full disks.
#
#   scripts/fault-loops.sh [--preset release] [--kill9-rounds 40] [--kills 8]
#                          [--pg-runs 10] [--disk-runs 10] [--out FILE]
#
# Builds nothing: run `cmake --build --preset <preset>` first. A count of 0
# leaves that fault out. Each line of the summary (stdout, or appended to
# --out) names the fault, the runs and how many passed; the kill -9 loop adds
# its totals. Exit 0 when every run passed. Every loop is bounded in count
# and, inside the test scripts, in time; everything talks to 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PRESET=release KILL9_ROUNDS=40 KILLS=8 PG_RUNS=10 DISK_RUNS=10 OUT=
while [[ $# -gt 0 ]]; do
  case $1 in
    --preset) PRESET=$2; shift 2 ;;
    --kill9-rounds) KILL9_ROUNDS=$2; shift 2 ;;
    --kills) KILLS=$2; shift 2 ;;
    --pg-runs) PG_RUNS=$2; shift 2 ;;
    --disk-runs) DISK_RUNS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
BUILD=$ROOT/build/$PRESET
SERVER=$BUILD/apps/metrics-server/metrics-server
LOADGEN=$BUILD/apps/metrics-loadgen/metrics-loadgen
[[ -x $SERVER && -x $LOADGEN ]] || {
  echo "fault-loops: build the $PRESET preset first (missing $SERVER or $LOADGEN)" >&2
  exit 2
}
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/fault-loops.XXXXXX")
echo "fault-loops: logs in $LOGS" >&2
say() {
  if [[ -n $OUT ]]; then echo "$1" | tee -a "$OUT"; else echo "$1"; fi
}
failed=0
say "# fault-loops $(date -u +%FT%TZ) preset=$PRESET commit=$(git -C "$ROOT" rev-parse --short HEAD) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

if ((KILL9_ROUNDS > 0)); then
  start=$SECONDS rc=0
  bash "$ROOT/tests/faults/kill9_loop_test.sh" --server "$SERVER" --loadgen "$LOADGEN" \
    --rounds "$KILL9_ROUNDS" --kills "$KILLS" --results "$LOGS/kill9.txt" \
    --keep-failed "$LOGS/kill9-failed" 2>"$LOGS/kill9.log" || rc=$?
  ((rc == 0)) || failed=1
  say "kill9: exit $rc in $((SECONDS - start)) s; $(grep '^# total' "$LOGS/kill9.txt" | cut -c3-)"
fi

# repeat NAME COUNT SCRIPT ARGS...: runs a test script COUNT times.
repeat() {
  local name=$1 count=$2 passed=0 rc start=$SECONDS
  shift 2
  for i in $(seq 1 "$count"); do
    rc=0
    bash "$@" >"$LOGS/$name-$i.log" 2>&1 || rc=$?
    if ((rc == 0)); then ((++passed)); else failed=1; fi
  done
  say "$name: $passed of $count runs passed in $((SECONDS - start)) s (logs $LOGS/$name-*.log)"
}
((PG_RUNS > 0)) && repeat pg_restart "$PG_RUNS" "$ROOT/tests/faults/pg_restart_test.sh" \
  --server "$SERVER" --loadgen "$LOADGEN"
((DISK_RUNS > 0)) && repeat disk_full "$DISK_RUNS" "$ROOT/tests/faults/disk_full_test.sh" \
  --server "$SERVER"
exit "$failed"
