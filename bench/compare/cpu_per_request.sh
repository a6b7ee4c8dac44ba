#!/usr/bin/env bash
# Server CPU time per request, variant against variant, in alternating rounds.
#
# Throughput on a shared 2-core machine swings with whatever else runs; the
# CPU time the server spends per request barely does. Each round starts every
# variant's server on a free 127.0.0.1 port (memory only), drives it with wrk
# for DURATION seconds, and divides the server's utime+stime (from
# /proc/PID/stat) by the requests wrk completed. Prints each round, then the
# median per variant and its ratio to the first variant.
#
#   bench/compare/cpu_per_request.sh \
#     old=/work/baseline/metrics-server:bench/wrk/batch.lua \
#     new=build/release/apps/metrics-server/metrics-server:bench/wrk/batch.lua
#
# A variant is NAME=SERVER_BINARY:WRK_SCRIPT[:EXTRA SERVER ARGS]. Knobs:
# ROUNDS (5), DURATION (8), CONNS (64), WRK_THREADS (1).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-8}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-1}
HZ=$(getconf CLK_TCK)
(($# >= 1)) || { sed -n '2,17p' "$0" >&2; exit 2; }

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
cpu_ticks() {  # utime + stime of a pid, in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

declare -A RESULTS
NAMES=()
for spec in "$@"; do NAMES+=("${spec%%=*}"); done

for ((round = 1; round <= ROUNDS; round++)); do
  for spec in "$@"; do
    name=${spec%%=*}
    rest=${spec#*=}
    IFS=: read -r bin script extra <<<"$rest"
    port=$(free_port)
    # shellcheck disable=SC2086 # extra args are words on purpose
    "$bin" -a "127.0.0.1:$port" -f "" --access-log=false --log-level warn $extra \
      >"$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
      curl -fsS "http://127.0.0.1:$port/ping" >/dev/null 2>&1 && break
      sleep 0.05
    done
    before=$(cpu_ticks "$SERVER_PID")
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" -s "$script" \
      "http://127.0.0.1:$port/" >"$WORK/$name.wrk" 2>&1
    after=$(cpu_ticks "$SERVER_PID")
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    requests=$(awk '/requests in/ {print $1}' "$WORK/$name.wrk")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/$name.wrk")
    [[ -z $non2xx ]] || { echo "$name: $non2xx answers were not 2xx" >&2; exit 1; }
    us=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$requests" \
      'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
    rps=$(awk '/Requests\/sec/ {printf "%d", $2}' "$WORK/$name.wrk")
    echo "round $round  $name  $us us CPU/request  ($requests requests, $rps/s)"
    RESULTS[$name]+="$us "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
first=
echo
echo "| variant | median server CPU per request (us) | vs ${NAMES[0]} |"
echo "|---|---|---|"
for name in "${NAMES[@]}"; do
  m=$(echo "${RESULTS[$name]}" | median)
  [[ -n $first ]] || first=$m
  echo "| $name | $m | $(awk -v a="$m" -v b="$first" 'BEGIN {printf "%.2fx", a / b}') |"
done
