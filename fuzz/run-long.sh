#!/usr/bin/env bash
# Long libFuzzer runs of every target, one after the other, with the results
# as rows of the table in fuzz/README.md.
#
#   fuzz/run-long.sh [--time SECONDS] [--targets "http gzip ..."] [--merge]
#                    [--results FILE] [--build DIR] [--nice N]
#
# --time      per target (default 3600)
# --merge     fold what each run found into fuzz/corpus/<target> (only
#             inputs that add coverage; the corpus is then capped at 200
#             files by keeping the smallest)
# --results   append one markdown table row per target (default stdout)
# --nice      run the fuzzers at this niceness (default 10), so that a long
#             campaign gives way to builds on a shared machine
#
# Needs clang 14 and libFuzzer (scripts/setup.sh installs them). It configures
# and builds the instrumented targets in --build (default build/fuzz) first.
# A crash stops nothing: the run goes on with the next target, the crash is
# kept in the scratch folder, named in the row, and the script exits 1 at the
# end. Exit 0: every target ran its time without a finding.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TIME=3600 TARGETS="json_batch json_metric text gzip config http file_format remote_write history_chunk"
MERGE=0 RESULTS= BUILD=$ROOT/build/fuzz NICE=10
while [[ $# -gt 0 ]]; do
  case $1 in
    --time) TIME=$2; shift 2 ;;
    --targets) TARGETS=$2; shift 2 ;;
    --merge) MERGE=1; shift ;;
    --results) RESULTS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --nice) NICE=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "fuzz-long: $*" >&2; }

if [[ ! -f $BUILD/build.ninja ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=function" \
    -DMETRICS_FUZZ=ON -DMETRICS_WERROR=OFF -DMETRICS_BUILD_BENCHMARKS=OFF >/dev/null
fi
# shellcheck disable=SC2046
nice -n "$NICE" ninja -C "$BUILD" $(for t in $TARGETS; do echo "fuzz_$t"; done) >/dev/null

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-long.XXXXXX")
log "scratch folder $SCRATCH (kept: crashes and logs)"
row() {
  if [[ -n $RESULTS ]]; then echo "$1" >>"$RESULTS"; else echo "$1"; fi
}
failed=0
for t in $TARGETS; do
  bin=$BUILD/fuzz/fuzz_$t
  found=$SCRATCH/$t/found
  mkdir -p "$found"
  cp "$ROOT/fuzz/corpus/$t/"* "$found/" 2>/dev/null || true
  max_len=8192
  [[ $t == http ]] && max_len=20000
  log "$t: ${TIME} s"
  rc=0
  nice -n "$NICE" "$bin" -max_total_time="$TIME" -max_len=$max_len -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$SCRATCH/$t/" "$found" \
    >"$SCRATCH/$t/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$SCRATCH/$t/log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$SCRATCH/$t/log" | tail -n1)
  first=$(grep -m1 -E 'INITED cov: ' "$SCRATCH/$t/log" | sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+).*/\1 \2/')
  last=$(grep -E '(DONE|NEW|REDUCE|pulse) +cov: ' "$SCRATCH/$t/log" | tail -n1 |
    sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+).*/\1 \2/')
  read -r cov0 ft0 <<<"${first:-? ?}"
  read -r cov1 ft1 <<<"${last:-? ?}"
  findings=none
  crashes=$(find "$SCRATCH/$t" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' \
    -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l)
  if [[ $rc != 0 || $crashes != 0 ]]; then
    findings="exit $rc, $crashes artifact(s) in $SCRATCH/$t"
    failed=1
  fi
  files=$(find "$found" -type f | wc -l)
  if [[ $MERGE == 1 && $failed == 0 ]]; then
    nice -n "$NICE" "$bin" -merge=1 "$ROOT/fuzz/corpus/$t" "$found" >"$SCRATCH/$t/merge.log" 2>&1
    # Keep the corpus small for CI: the hand-written seeds, and the smallest
    # of the found inputs up to 200 files in all.
    seeds=$(find "$ROOT/fuzz/corpus/$t" -name 'seed_*' | wc -l)
    ls -S "$ROOT/fuzz/corpus/$t" | grep -v '^seed_' | head -n -$((200 - seeds)) |
      sed "s|^|$ROOT/fuzz/corpus/$t/|" | xargs -r rm -f
    files=$(find "$ROOT/fuzz/corpus/$t" -type f | wc -l)
  fi
  row "| $t | $TIME s | ${execs:-?} | ${rate:-?} | $cov0 → $cov1 | $ft0 → $ft1 | $files | $findings |"
done
exit "$failed"
