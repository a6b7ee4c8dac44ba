#!/usr/bin/env bash
# What the preload agent costs a plain C host in memory, per library (a
# measurement, not a test). Starts metrics-server (memory only) on a free
# 127.0.0.1 port, runs the host (`sleep 60` by default) alone and with
# LD_PRELOAD of the agent reporting to that server, reads /proc/PID/smaps of
# each after WAIT seconds (default 25: two reports at the default 10 s), and
# prints per mapping (shared objects by file name, anonymous ones by kind),
# summed over the mapping's segments, in kB:
#   Rss       resident pages
#   Pss       proportional share (a page shared by N processes counts 1/N)
#   Private   Private_Clean + Private_Dirty (only this process maps them)
#   Shared    Shared_Clean + Shared_Dirty
#   Anon      Anonymous (heap, stacks, and copied-on-write pages of files:
#             relocated data of the libraries)
# then the totals alone, with the agent, and the difference.
#
#   bench/compare/agent_memory.sh
#   KEY=secret bench/compare/agent_memory.sh         # signed reports
#   ADDRESS_SCHEME=https ... (not supported here: plain http only)
#   WAIT=40 HOST_CMD="sleep 90" bench/compare/agent_memory.sh
#   PRELOAD=/path/to/libmetrics-agent-preload.so bench/compare/agent_memory.sh
#
# Pss depends on which other processes map the same files at that moment
# (the server started here maps libstdc++, libcrypto ...): Rss and Private
# do not.
set -euo pipefail
unset ADDRESS KEY_FILE LD_PRELOAD

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/release}
SERVER=${METRICS_SERVER:-$BUILD_DIR/apps/metrics-server/metrics-server}
PRELOAD=${PRELOAD:-$BUILD_DIR/src/agent/libmetrics-agent-preload.so}
WAIT=${WAIT:-25}
HOST_CMD=${HOST_CMD:-sleep 60}
SIGN_KEY=${KEY:-}
unset KEY

for f in "$SERVER" "$PRELOAD"; do
  [[ -e $f ]] || { echo "agent_memory: missing $f (build it first)" >&2; exit 1; }
done

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

PORT=$(free_port)
server_args=(-a "127.0.0.1:$PORT" -f "" -r false --access-log false)
[[ -n $SIGN_KEY ]] && server_args+=(-k "$SIGN_KEY")
"$SERVER" "${server_args[@]}" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
  (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

# Sums smaps per mapping name; prints "name rss pss private shared anon".
summarise() {
  awk '
    /^[0-9a-f]+-[0-9a-f]+ / {
      name = ($6 == "") ? "[anon]" : $6
      sub(/.*\//, "", name)
      next
    }
    $1 == "Rss:" { rss[name] += $2 }
    $1 == "Pss:" { pss[name] += $2 }
    $1 == "Private_Clean:" || $1 == "Private_Dirty:" { priv[name] += $2 }
    $1 == "Shared_Clean:" || $1 == "Shared_Dirty:" { shr[name] += $2 }
    $1 == "Anonymous:" { anon[name] += $2 }
    END { for (n in rss) printf "%s %d %d %d %d %d\n", n, rss[n], pss[n], priv[n], shr[n], anon[n] }
  ' "$1"
}

# Runs the host with the given environment prefix, snapshots smaps after WAIT s.
measure() {
  local out=$1
  shift
  # shellcheck disable=SC2086
  env "$@" $HOST_CMD &
  local pid=$!
  PIDS+=("$pid")
  sleep "$WAIT"
  cp "/proc/$pid/smaps" "$WORK/$out.smaps"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  summarise "$WORK/$out.smaps" >"$WORK/$out.sum"
}

agent_env=(LD_PRELOAD="$PRELOAD" ADDRESS="127.0.0.1:$PORT")
[[ -n $SIGN_KEY ]] && agent_env+=(KEY="$SIGN_KEY")
measure alone -u LD_PRELOAD
measure agent "${agent_env[@]}"

echo "host: $HOST_CMD; snapshot after ${WAIT}s; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "agent: $PRELOAD${SIGN_KEY:+ (signed reports)}"
echo
echo "| mapping (with the agent) | Rss kB | Pss kB | Private kB | Shared kB | Anon kB | Rss kB alone |"
echo "|---|---:|---:|---:|---:|---:|---:|"
awk '
  FNR == NR { alone[$1] = $2; next }
  { printf "%s %d %d %d %d %d %d\n", $1, $2, $3, $4, $5, $6, alone[$1] }
' "$WORK/alone.sum" "$WORK/agent.sum" | sort -k2,2nr |
  awk '$2 > 0 || $7 > 0 { printf "| %s | %d | %d | %d | %d | %d | %d |\n", $1, $2, $3, $4, $5, $6, $7 }'
echo
total() { awk '{ r += $2; p += $3; v += $4; s += $5; a += $6 } END { print r, p, v, s, a }' "$1"; }
read -r ar ap av as aa < <(total "$WORK/alone.sum")
read -r gr gp gv gs ga < <(total "$WORK/agent.sum")
echo "| total | Rss kB | Pss kB | Private kB | Shared kB | Anon kB |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| host alone | $ar | $ap | $av | $as | $aa |"
echo "| host + agent | $gr | $gp | $gv | $gs | $ga |"
echo "| **extra** | **$((gr - ar))** | **$((gp - ap))** | **$((gv - av))** | $((gs - as)) | $((ga - aa)) |"
polls=$(curl -s "http://127.0.0.1:$PORT/value/counter/PollCount" || true)
echo
echo "PollCount stored by the server (the agent's samples that arrived): ${polls:-none}"
