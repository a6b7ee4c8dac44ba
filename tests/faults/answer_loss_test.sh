#!/usr/bin/env bash
# Lost answers and cut connections between the load generator and the real
# server (API.md Part 2, "Exactly-once writes"): metrics-loadgen drives a
# metrics-server (memory storage) through answer_proxy, which cuts some write
# requests before forwarding them, swallows the answer of others after the
# server applied them, and cuts others halfway through the answer.
#
# 1. Control, without keys: requests end in doubt (the proxy does bite).
# 2. With --idempotency-keys: every request in doubt is resent with its key
#    until answered, the server answers the resends of applied keys as
#    replays, and the read-back is exact: 0 requests in doubt, 0 mismatches,
#    0 unverified, resends and replays > 0, and the proxy swallowed answers.
#
#   answer_loss_test.sh --server BIN --loadgen BIN --proxy BIN
#                       [--agents N] [--duration S]
#
# Bounded: each run is under timeout(1). Exit 0 on success, 1 on failure, 2
# on bad usage.
set -euo pipefail
unset ADDRESS DATABASE_DSN FILE_STORAGE_PATH STORE_INTERVAL RESTORE KEY CONFIG ALLOW_UNSIGNED \
  TLS_CERT TLS_KEY LOG_LEVEL

SERVER='' LOADGEN='' PROXY='' AGENTS=20 DURATION=4
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || { echo "answer-loss-test: $1 needs a value" >&2; exit 2; }
  case $1 in
    --server) SERVER=$2 ;;
    --loadgen) LOADGEN=$2 ;;
    --proxy) PROXY=$2 ;;
    --agents) AGENTS=$2 ;;
    --duration) DURATION=$2 ;;
    *) echo "answer-loss-test: unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
log() { echo "answer-loss-test: $*" >&2; }
[[ -x $SERVER && -x $LOADGEN && -x $PROXY ]] || { log "--server, --loadgen, --proxy: executables"; exit 2; }
command -v curl >/dev/null || { log "curl is needed"; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/answer-loss-test.XXXXXX")
SERVER_PID='' PROXY_PID=''
cleanup() {
  [[ -z $PROXY_PID ]] || { kill -TERM "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; }
  [[ -z $SERVER_PID ]] || { kill -KILL "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
  log "FAIL: $*"
  for f in "$WORK"/*.log "$WORK"/*.json "$WORK"/*.err "$WORK"/*.stats; do
    [[ -s $f ]] && { log "--- $(basename "$f") (last 20 lines)"; tail -n 20 "$f" >&2; }
  done
  exit 1
}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

"$SERVER" -a 127.0.0.1:0 -f "" -r=false --history-dir "" --access-log=false --log-level info \
  2>"$WORK/server.log" &
SERVER_PID=$!
PORT=''
for _ in $(seq 1 300); do
  kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited at start"
  PORT=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$WORK/server.log" | head -n1)
  [[ -n $PORT ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
    "http://127.0.0.1:$PORT/ping" || true) == 200 ]] && break
  PORT=''
  sleep 0.05
done
[[ -n $PORT ]] || fail "the server did not answer /ping"

# run NAME [loadgen flags...]: one generator run through a fresh proxy.
run() {
  local name=$1 proxy_port=''
  shift
  "$PROXY" --upstream "$PORT" --cut 0.05 --swallow 0.15 --cut-answer 0.05 --seed "$RANDOM" \
    --stats "$WORK/$name.stats" >"$WORK/$name.proxy" 2>"$WORK/$name.proxy.err" &
  PROXY_PID=$!
  for _ in $(seq 1 200); do
    proxy_port=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$WORK/$name.proxy")
    [[ -n $proxy_port ]] && break
    sleep 0.02
  done
  [[ -n $proxy_port ]] || fail "the proxy did not start"
  local rc=0
  timeout $((DURATION + 90)) "$LOADGEN" -a "127.0.0.1:$proxy_port" -n "$AGENTS" -d "${DURATION}s" \
    -m batch --gzip --run-id "al_$$_${name}_" --request-timeout 2s --json "$@" \
    >"$WORK/$name.json" 2>"$WORK/$name.err" || rc=$?
  kill -TERM "$PROXY_PID"
  wait "$PROXY_PID" || true
  PROXY_PID=''
  echo "$rc"
}
field() {  # field RUN NAME: first "NAME":value of the run's JSON report
  grep -o "\"$2\":[^,}]*" "$WORK/$1.json" | head -n1 | cut -d: -f2
}
stat() {  # stat RUN NAME: NAME=value of the proxy's counts
  grep -o "$2=[0-9]*" "$WORK/$1.stats" | cut -d= -f2
}

# 1. Without keys: the faults leave requests in doubt.
RC=$(run plain)
[[ $RC == 0 ]] || fail "control run: metrics-loadgen exited $RC"
PLAIN_DOUBT=$(field plain in_doubt)
((PLAIN_DOUBT > 0)) || fail "control run: no request in doubt: the proxy did not bite"
((10#$(stat plain swallowed) > 0)) || fail "control run: the proxy swallowed nothing"
log "without keys: $(field plain acknowledged) acknowledged, $PLAIN_DOUBT in doubt," \
  "proxy $(cat "$WORK/plain.stats")"

# 2. With keys: nothing stays in doubt and the counters are exact.
RC=$(run keyed --idempotency-keys)
[[ $RC == 0 ]] || fail "keyed run: metrics-loadgen exited $RC"
ACK=$(field keyed acknowledged) DOUBT=$(field keyed in_doubt) MISMATCH=$(field keyed mismatches)
UNVERIFIED=$(field keyed unverified) CHECKED=$(field keyed checked)
RESENT=$(field keyed resent) REPLAYED=$(field keyed replayed)
[[ $ACK =~ ^[0-9]+$ && $DOUBT =~ ^[0-9]+$ && $MISMATCH =~ ^[0-9]+$ && $UNVERIFIED =~ ^[0-9]+$ &&
  $CHECKED =~ ^[0-9]+$ && $RESENT =~ ^[0-9]+$ && $REPLAYED =~ ^[0-9]+$ ]] ||
  fail "the keyed report lacks a field"
((DOUBT == 0)) || fail "keyed run: $DOUBT requests still in doubt"
((MISMATCH == 0)) || fail "keyed run: $MISMATCH mismatches"
((UNVERIFIED == 0)) || fail "keyed run: $UNVERIFIED unverified"
((ACK > 0 && CHECKED > 0)) || fail "keyed run: nothing acknowledged or checked"
((10#$(stat keyed swallowed) > 0)) || fail "keyed run: the proxy swallowed nothing"
((RESENT > 0)) || fail "keyed run: nothing was resent"
((REPLAYED > 0)) || fail "keyed run: no resend was answered as a replay (Idempotent-Replayed)"
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died"
if grep -nE "Sanitizer|runtime error:| (error|critical) " "$WORK/server.log"; then
  fail "a sanitizer report or an error in the server's log"
fi
log "with keys: $ACK acknowledged, 0 in doubt, $RESENT resends, $REPLAYED replays," \
  "$CHECKED checked, 0 mismatches, proxy $(cat "$WORK/keyed.stats")"
log "PASS"
