#!/usr/bin/env bash
# kill -9 under load in synchronous file mode (-i 0: write-ahead log, an update
# is acknowledged only after fdatasync): no acknowledged update may be lost.
#
# Each round starts metrics-server on a free loopback port with a fresh
# storage file (-f DIR/metrics.json -i 0 -r=true), drives it with
# metrics-loadgen (batch mode, gzip, a run id of its own, not --strict) and,
# once the load phase has begun, K times: sleeps 0.3-1.2 s, kill -9s the
# server and restarts it on the same port with the same file (restore on),
# waiting until it answers /ping again. Killing stops a quiet tail before the
# load phase ends, so the generator's read-back (every counter and gauge of
# the run, checked against its ledger of acknowledged deltas) talks to a live
# server. A round passes when the generator exits 0 with mismatches == 0,
# unverified == 0 and acknowledged > 0, and when, after one more kill -9 and
# restart, every counter of the run (and each agent's first gauge) reads back
# exactly as it did before that last kill. Across all rounds at least one
# request must have been in doubt (no answer), or the kills never hit a
# request in flight.
#
# With --idempotency-keys 1 the generator sends a key with every request
# and resends every request in doubt with it (API.md Part 2, "Exactly-once
# writes"; the key is in the same log record as the write): then every round
# must end with 0 requests in doubt and the check is exact, and across all
# rounds at least one request must have been resent (the kills hit requests
# in flight) instead.
#
#   kill9_loop_test.sh --server BIN --loadgen BIN --rounds R --kills K
#                      [--agents N] [--duration S] [--results FILE]
#                      [--keep-failed DIR] [--idempotency-keys 0|1]
#
#   --agents N         simulated agents (default 50)
#   --duration S       load phase of each round, whole seconds (default: room
#                      for K kills and the quiet tail, 1 + 1.7*K + 3)
#   --results FILE     append one line per round (round, kills under load,
#                      acknowledged, in_doubt, rejected, mismatches, seconds),
#                      and a header and a total as "#" lines
#   --keep-failed DIR  on failure, copy the round's storage files, server logs
#                      and generator report into DIR before cleaning up
#
# A long run (binaries of the release preset):
#   bash tests/faults/kill9_loop_test.sh \
#     --server build/release/apps/metrics-server/metrics-server \
#     --loadgen build/release/apps/metrics-loadgen/metrics-loadgen \
#     --rounds 100 --kills 8 --results /tmp/kill9.txt
#
# Every loop is bounded in count and in time. Exit 0 on success, 1 on
# failure, 2 on bad usage.
set -euo pipefail
# A server's environment wins over its flags: none of the caller's settings
# may reach the servers started here.
unset ADDRESS DATABASE_DSN FILE_STORAGE_PATH STORE_INTERVAL RESTORE KEY CONFIG ALLOW_UNSIGNED \
  TLS_CERT TLS_KEY LOG_LEVEL

SERVER='' LOADGEN='' ROUNDS='' KILLS='' AGENTS=50 DURATION='' RESULTS='' KEEP='' KEYS=0
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || { echo "kill9-test: $1 needs a value" >&2; exit 2; }
  case $1 in
    --server) SERVER=$2 ;;
    --loadgen) LOADGEN=$2 ;;
    --rounds) ROUNDS=$2 ;;
    --kills) KILLS=$2 ;;
    --agents) AGENTS=$2 ;;
    --duration) DURATION=$2 ;;
    --results) RESULTS=$2 ;;
    --keep-failed) KEEP=$2 ;;
    --idempotency-keys) KEYS=$2 ;;
    *) echo "kill9-test: unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
log() { echo "kill9-test: $*" >&2; }
usage() { log "$*"; exit 2; }
is_count() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); }
[[ -x $SERVER ]] || usage "--server: not an executable: '$SERVER'"
[[ -x $LOADGEN ]] || usage "--loadgen: not an executable: '$LOADGEN'"
is_count "$ROUNDS" 1 100000 || usage "--rounds: 1 to 100000"
is_count "$KILLS" 1 1000 || usage "--kills: 1 to 1000"
is_count "$AGENTS" 1 10000 || usage "--agents: 1 to 10000"
[[ $KEYS == 0 || $KEYS == 1 ]] || usage "--idempotency-keys: 0 or 1"
KEY_FLAGS=()
((KEYS == 0)) || KEY_FLAGS=(--idempotency-keys)
command -v curl >/dev/null || usage "curl is needed"

# No kill later than TAIL_MS (or twice the slowest restart seen so far, when
# that is more) before the load phase ends: time for the last
# restart, so the read-back finds a live server.
TAIL_MS=3000
if [[ -z $DURATION ]]; then
  # 1 s lead-in, per kill at most 1.2 s of sleep plus ~0.5 s of restart, the tail.
  DURATION=$(((1000 + 1700 * KILLS + TAIL_MS + 999) / 1000))
fi
is_count "$DURATION" 1 86400 || usage "--duration: whole seconds, 1 to 86400"
# Bounds: the generator's whole run, one server start, one wait for the load.
LOADGEN_LIMIT_S=$((DURATION + 120))
START_LIMIT_MS=30000
BIND_RETRIES=50

now_ms() { date +%s%3N; }
seconds_since() { local d=$(($(now_ms) - $1)); printf '%d.%03d' $((d / 1000)) $((d % 1000)); }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kill9-test.XXXXXX")
SERVER_PID='' LOADGEN_PID='' DIR='' PORT='' STARTS=0 MAX_RESTART_MS=0 SLOWEST_MS=0
stop_pid() {  # stop_pid PID: KILL and reap a child of this shell, if alive
  [[ -n $1 ]] || return 0
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  # The generator runs under timeout(1), which passes TERM on to it.
  if [[ -n $LOADGEN_PID ]]; then kill -TERM "$LOADGEN_PID" 2>/dev/null || true; fi
  stop_pid "$SERVER_PID"
  SERVER_PID=
  if [[ -n $LOADGEN_PID ]]; then
    for _ in $(seq 1 50); do kill -0 "$LOADGEN_PID" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$LOADGEN_PID"
    LOADGEN_PID=
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  log "FAIL (round ${ROUND:-?}): $*"
  if [[ -n $DIR && -d $DIR ]]; then
    local f
    for f in "$DIR"/server.*.log; do
      [[ -e $f ]] || continue
      log "--- $(basename "$f") (last 20 lines)"
      tail -n 20 "$f" >&2
    done
    for f in "$DIR/loadgen.json" "$DIR/loadgen.err"; do
      [[ -s $f ]] && { log "--- $(basename "$f")"; cat "$f" >&2; }
    done
    log "--- storage files"
    ls -l "$DIR" >&2 || true
    if [[ -n $KEEP ]]; then
      mkdir -p "$KEEP" && cp -a "$DIR" "$KEEP/round${ROUND:-x}.$$" &&
        log "kept the round's files in $KEEP/round${ROUND:-x}.$$"
    fi
  fi
  exit 1
}

# Room for the agents' connections on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# start_server PORT: starts the server on 127.0.0.1:PORT (0: a free port, then
# read from its log) with the round's storage file; returns once it answers
# /ping. A bind that fails (the port briefly held by a socket of someone else)
# is retried; any other failure to start is a failure of the test.
start_server() {
  local want=$1 attempt logf t0 code
  for ((attempt = 1; attempt <= BIND_RETRIES; attempt++)); do
    STARTS=$((STARTS + 1))
    logf="$DIR/server.$STARTS.log"
    "$SERVER" -a "127.0.0.1:$want" -f "$DIR/metrics.json" -i 0 -r=true --history-dir "" --access-log=false \
      --log-level info 2>"$logf" &
    SERVER_PID=$!
    t0=$(now_ms)
    while :; do
      if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" 2>/dev/null && code=0 || code=$?
        SERVER_PID=
        if [[ $want != 0 ]] && grep -q "cannot listen on" "$logf"; then
          sleep 0.1
          continue 2
        fi
        cat "$logf" >&2
        fail "the server (start $STARTS) exited with status $code instead of starting"
      fi
      if [[ $want == 0 ]]; then
        PORT=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$logf" | head -n1)
        [[ -n $PORT ]] && want=$PORT
      fi
      if [[ $want != 0 ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
        "http://127.0.0.1:$want/ping" 2>/dev/null || true) == 200 ]]; then
        return 0
      fi
      (($(now_ms) - t0 < START_LIMIT_MS)) ||
        fail "the server (start $STARTS) did not answer /ping within $((START_LIMIT_MS / 1000)) s"
      sleep 0.02
    done
  done
  fail "could not bind 127.0.0.1:$want again after $BIND_RETRIES attempts"
}

# kill_restart: kill -9 the server (it must still be alive: a server that died
# on its own is a finding), reap it, start it again on the same port and file.
kill_restart() {
  local t0
  kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died on its own (start $STARTS)"
  t0=$(now_ms)
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  start_server "$PORT"
  t0=$(($(now_ms) - t0))
  ((t0 <= MAX_RESTART_MS)) || MAX_RESTART_MS=$t0
  ((t0 <= SLOWEST_MS)) || SLOWEST_MS=$t0
}

field() {  # field NAME: first "NAME":value of the generator's JSON report
  grep -o "\"$1\":[^,}]*" "$DIR/loadgen.json" | head -n1 | cut -d: -f2
}

# read_sample FILE: every agent's counter and first gauge (each agent its
# own instance, as metrics-loadgen sends them: POST /value/ with labels), the
# shared counter's classic value, one "answer status" line each.
read_sample() {
  local args=() a labels base="http://127.0.0.1:$PORT"
  for ((a = 0; a < AGENTS; a++)); do
    labels="\"labels\":{\"instance\":\"loadgen-$a\",\"job\":\"loadgen\"}"
    args+=(--next -sS --max-time 60 -w ' %{http_code}\n' -H 'Content-Type: application/json'
      -d "{\"id\":\"${RUN_ID}c\",\"type\":\"counter\",$labels}" "$base/value/")
    args+=(--next -sS --max-time 60 -w ' %{http_code}\n' -H 'Content-Type: application/json'
      -d "{\"id\":\"${RUN_ID}g0\",\"type\":\"gauge\",$labels}" "$base/value/")
  done
  args+=(--next -sS --max-time 60 -w ' %{http_code}\n' "$base/value/counter/${RUN_ID}loadgen_hot")
  curl "${args[@]:1}" >"$1" 2>"$1.err" ||
    fail "reading back the sample failed: $(cat "$1.err")"
  # Every read must find its series: a 404 on both sides would compare equal
  # and check nothing.
  if grep -qv ' 200$' "$1"; then
    fail "reading back the sample: not every series was found ($(grep -cv ' 200$' "$1") missing)"
  fi
}

if [[ -n $RESULTS ]]; then
  echo "# kill9_loop_test $(date -u +%FT%TZ): rounds=$ROUNDS kills=$KILLS agents=$AGENTS" \
    "duration=${DURATION}s server=$SERVER" >>"$RESULTS"
fi

T_ALL=$(now_ms)
TOTAL_KILLS=0 TOTAL_ACK=0 TOTAL_DOUBT=0 TOTAL_REJ=0 TOTAL_MISMATCH=0 DOUBT_ROUNDS=0 TOTAL_RESENT=0
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  T_ROUND=$(now_ms)
  DIR="$WORK/round$ROUND"
  mkdir "$DIR"
  RUN_ID="k9_$$_${RANDOM}_r${ROUND}_"
  start_server 0

  timeout "$LOADGEN_LIMIT_S" "$LOADGEN" -a "127.0.0.1:$PORT" -n "$AGENTS" -d "${DURATION}s" \
    -m batch --gzip --run-id "$RUN_ID" --request-timeout 2s --json "${KEY_FLAGS[@]}" \
    >"$DIR/loadgen.json" 2>"$DIR/loadgen.err" &
  LOADGEN_PID=$!

  # Kill only once the load phase runs (the shared counter exists): a kill
  # while agents connect or read their baselines could exclude them or leave
  # a baseline unread.
  T_WAIT=$(now_ms)
  HOT_URL="http://127.0.0.1:$PORT/value/counter/${RUN_ID}loadgen_hot"
  until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$HOT_URL" || true) == 200 ]]; do
    kill -0 "$LOADGEN_PID" 2>/dev/null || { wait "$LOADGEN_PID" || true; LOADGEN_PID=;
      fail "the generator ended before its load phase began"; }
    (($(now_ms) - T_WAIT < 60000)) || fail "the load phase did not begin within 60 s"
    sleep 0.05
  done
  # About when the load phase ends: it began a little before the counter
  # appeared (one durable group later); the quiet tail absorbs the difference.
  LOAD_END=$(($(now_ms) + DURATION * 1000))

  KILLS_DONE=0
  for ((k = 1; k <= KILLS; k++)); do
    PAUSE=$((300 + RANDOM % 901))
    TAIL=$((2 * SLOWEST_MS > TAIL_MS ? 2 * SLOWEST_MS : TAIL_MS))
    (($(now_ms) + PAUSE + TAIL <= LOAD_END)) || break
    sleep "$(printf '%d.%03d' $((PAUSE / 1000)) $((PAUSE % 1000)))"
    kill -0 "$LOADGEN_PID" 2>/dev/null || break
    kill_restart
    KILLS_DONE=$((KILLS_DONE + 1))
  done
  ((KILLS_DONE > 0)) || fail "no kill fitted into the load phase (raise --duration)"
  ((KILLS_DONE == KILLS)) ||
    log "round $ROUND: only $KILLS_DONE of $KILLS kills fitted before the quiet tail"

  LG_RC=0
  wait "$LOADGEN_PID" || LG_RC=$?
  LOADGEN_PID=
  kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died during the read-back"

  ACK=$(field acknowledged) DOUBT=$(field in_doubt) REJ=$(field rejected)
  MISMATCH=$(field mismatches) UNVERIFIED=$(field unverified) CHECKED=$(field checked)
  [[ $LG_RC == 0 ]] || fail "metrics-loadgen exited $LG_RC"
  [[ $MISMATCH =~ ^[0-9]+$ && $UNVERIFIED =~ ^[0-9]+$ && $ACK =~ ^[0-9]+$ &&
    $DOUBT =~ ^[0-9]+$ && $REJ =~ ^[0-9]+$ && $CHECKED =~ ^[0-9]+$ ]] ||
    fail "the generator's report lacks a field"
  ((MISMATCH == 0)) || fail "$MISMATCH metrics differ from what was acknowledged"
  ((UNVERIFIED == 0)) || fail "$UNVERIFIED metrics could not be read back"
  ((ACK > 0)) || fail "nothing was acknowledged"
  ((CHECKED > 0)) || fail "nothing was checked"
  RESENT=0
  if ((KEYS == 1)); then
    RESENT=$(field resent)
    [[ $RESENT =~ ^[0-9]+$ ]] || fail "the generator's report lacks resent"
    ((DOUBT == 0)) || fail "$DOUBT requests still in doubt with idempotency keys"
  fi

  # One more kill -9 with nothing in flight: what the server served must
  # survive it unchanged.
  read_sample "$DIR/before.txt"
  grep -q ' 200$' <(tail -n1 "$DIR/before.txt") || fail "the shared counter is not readable"
  kill_restart
  read_sample "$DIR/after.txt"
  if ! cmp -s "$DIR/before.txt" "$DIR/after.txt"; then
    diff "$DIR/before.txt" "$DIR/after.txt" >&2 || true
    fail "values changed across a kill -9 + restart with nothing in flight"
  fi

  stop_pid "$SERVER_PID"
  SERVER_PID=
  # A sanitizer report (TSan goes on after one, and kill -9 loses the exit
  # status that would tell) or an error the server logged fails the round.
  if grep -nE "Sanitizer|runtime error:| (error|critical) " "$DIR"/server.*.log "$DIR/loadgen.err" \
    >"$DIR/findings.txt"; then
    cat "$DIR/findings.txt" >&2
    fail "a sanitizer report or an error in the logs"
  fi
  SECS=$(seconds_since "$T_ROUND")
  TOTAL_KILLS=$((TOTAL_KILLS + KILLS_DONE)) TOTAL_ACK=$((TOTAL_ACK + ACK))
  TOTAL_DOUBT=$((TOTAL_DOUBT + DOUBT)) TOTAL_REJ=$((TOTAL_REJ + REJ))
  TOTAL_MISMATCH=$((TOTAL_MISMATCH + MISMATCH))
  ((DOUBT > 0)) && DOUBT_ROUNDS=$((DOUBT_ROUNDS + 1))
  TOTAL_RESENT=$((TOTAL_RESENT + RESENT))
  LINE="round=$ROUND kills=$KILLS_DONE acknowledged=$ACK in_doubt=$DOUBT rejected=$REJ"
  ((KEYS == 0)) || LINE+=" resent=$RESENT"
  LINE+=" mismatches=$MISMATCH seconds=$SECS"
  log "$LINE (+1 idle kill; checked $CHECKED metrics; server started $STARTS times;" \
    "slowest kill-to-ping $MAX_RESTART_MS ms)"
  [[ -z $RESULTS ]] || echo "$LINE" >>"$RESULTS"
  rm -rf "$DIR"
  DIR='' STARTS=0 MAX_RESTART_MS=0
done

SUMMARY="total rounds=$ROUNDS kills=$TOTAL_KILLS idle_kills=$ROUNDS acknowledged=$TOTAL_ACK"
SUMMARY+=" in_doubt=$TOTAL_DOUBT"
((KEYS == 0)) || SUMMARY+=" resent=$TOTAL_RESENT"
SUMMARY+=" rejected=$TOTAL_REJ mismatches=$TOTAL_MISMATCH rounds_with_doubt=$DOUBT_ROUNDS"
SUMMARY+=" seconds=$(seconds_since "$T_ALL")"
log "$SUMMARY"
[[ -z $RESULTS ]] || echo "# $SUMMARY" >>"$RESULTS"
if ((KEYS == 1)); then
  ((TOTAL_RESENT > 0)) || fail "no request was ever resent: the kills never hit a request in flight"
else
  ((DOUBT_ROUNDS > 0)) || fail "no request was ever in doubt: the kills never hit a request in flight"
fi
log "PASS"
