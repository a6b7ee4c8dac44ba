#!/usr/bin/env bash
# Starts metrics-server on a free loopback port, drives it with metrics-loadgen
# (250 agents, bounded in time and count) and requires that everything
# acknowledged is exactly what the server holds. A negative control then
# checks that the verifier does fail when two runs write the same names.
#
#   loadgen_integration_test.sh --server BIN --loadgen BIN --storage memory|postgres
#
# postgres: uses METRICS_TEST_PG_DSN; when unset, exits 77 (skipped), or 1
# when CI is set. Exit 0 on success.
set -euo pipefail
# A server's environment wins over its flags: none of the caller's settings
# may reach the servers started here.
unset ADDRESS DATABASE_DSN FILE_STORAGE_PATH STORE_INTERVAL RESTORE KEY CONFIG ALLOW_UNSIGNED \
  TLS_CERT TLS_KEY LOG_LEVEL

SERVER= LOADGEN= STORAGE=memory
while [[ $# -gt 0 ]]; do
  case $1 in
    --server) SERVER=$2; shift 2 ;;
    --loadgen) LOADGEN=$2; shift 2 ;;
    --storage) STORAGE=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "loadgen-test: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

STORAGE_ARGS=(-f "")
if [[ $STORAGE == postgres ]]; then
  if [[ -z ${METRICS_TEST_PG_DSN:-} ]]; then
    if [[ -n ${CI:-} ]]; then
      fail "METRICS_TEST_PG_DSN is not set and CI is: the PostgreSQL variant must not be skipped in CI"
    fi
    log "METRICS_TEST_PG_DSN is not set: skipping the PostgreSQL variant"
    exit 77
  fi
  STORAGE_ARGS=(-d "$METRICS_TEST_PG_DSN")
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/loadgen-test.XXXXXX")
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Room for 250 connections on both sides (the generator raises its own limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

KEY=integration-key
# Port 0: the kernel picks a free port and the server logs it; no race with
# other tests picking the same number.
"$SERVER" -a 127.0.0.1:0 "${STORAGE_ARGS[@]}" --history-dir "" -k "$KEY" --access-log=false --log-level info \
  2>"$WORK/server.log" &
SERVER_PID=$!
PORT=
for _ in $(seq 1 150); do
  PORT=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$WORK/server.log" | head -n1)
  [[ -n $PORT ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; fail "server exited at start"; }
  sleep 0.1
done
[[ -n $PORT ]] || { cat "$WORK/server.log" >&2; fail "server did not report its port within 15 s"; }
log "server pid $SERVER_PID on 127.0.0.1:$PORT ($STORAGE)"

# run NAME ARGS...: one bounded generator run; its JSON report in $WORK/NAME.json.
run() {
  local name=$1; shift
  local rc=0
  timeout 90 "$LOADGEN" -a "127.0.0.1:$PORT" --server-pid "$SERVER_PID" --json "$@" \
    >"$WORK/$name.json" 2>"$WORK/$name.err" || rc=$?
  echo "$rc"
}
field() { grep -o "\"$2\":[^,}]*" "$WORK/$1.json" | head -n1 | cut -d: -f2; }
show() { log "$1: $(cat "$WORK/$1.json" "$WORK/$1.err")"; }

STRICT=(--strict)
# PostgreSQL may answer 503 when saturated: a rejection, not an integrity error.
[[ $STORAGE == postgres ]] && STRICT=()

# 1. The agents' batches: gzip, signed, 250 connections, each its own
# instance in the envelope (the default): every series and classic value checked.
rc=$(run batch -n 250 -d 4s --requests 30000 --gzip -k "$KEY" --run-id "it_b$$_" "${STRICT[@]}")
show batch
[[ $rc == 0 ]] || fail "batch run exited $rc"
[[ $(field batch labels) == true ]] || fail "batch run: not labelled"
[[ $(field batch mismatches) == 0 ]] || fail "batch run: mismatches"
[[ $(field batch acknowledged) -gt 0 ]] || fail "batch run: nothing acknowledged"
[[ $(field batch agents_connected) == 250 ]] || fail "batch run: not every agent connected"
# 250 instances x 29 series, then the 29 classic values.
[[ $(field batch checked) == $((250 * 29 + 29)) ]] || fail "batch run: not every series checked"

# 1b. The same as unlabelled arrays of Part 1 (per-agent names).
rc=$(run plain -n 100 -d 2s --requests 10000 --no-labels -k "$KEY" --run-id "it_p$$_" "${STRICT[@]}")
show plain
[[ $rc == 0 ]] || fail "unlabelled run exited $rc"
[[ $(field plain labels) == false ]] || fail "unlabelled run: labelled"
[[ $(field plain mismatches) == 0 ]] || fail "unlabelled run: mismatches"

# 1c. Single JSON metrics, each with the agent's labels.
rc=$(run json -n 50 -d 2s --requests 5000 -m json -b 5 -k "$KEY" --run-id "it_j$$_" "${STRICT[@]}")
show json
[[ $rc == 0 ]] || fail "json run exited $rc"
[[ $(field json mismatches) == 0 ]] || fail "json run: mismatches"

# 2. Single-metric text updates, signed, same server.
rc=$(run text -n 250 -d 2s --requests 20000 -m text -b 5 -k "$KEY" --run-id "it_t$$_" "${STRICT[@]}")
show text
[[ $rc == 0 ]] || fail "text run exited $rc"
[[ $(field text mismatches) == 0 ]] || fail "text run: mismatches"

# 3. Negative control: two runs write the same series (same names, same
# instances) at once, so each sees the other's deltas; a verifier that
# cannot fail would pass both.
rc_a=0; rc_b=0
timeout 90 "$LOADGEN" -a "127.0.0.1:$PORT" --json -n 10 -d 2s -k "$KEY" --run-id "it_d$$_" \
  >"$WORK/dup_a.json" 2>&1 & pid_a=$!
timeout 90 "$LOADGEN" -a "127.0.0.1:$PORT" --json -n 10 -d 2s -k "$KEY" --run-id "it_d$$_" \
  >"$WORK/dup_b.json" 2>&1 || rc_b=$?
wait "$pid_a" || rc_a=$?
log "negative control exit codes: $rc_a $rc_b (1 expected from at least one)"
[[ $rc_a == 1 || $rc_b == 1 ]] || fail "the verifier did not notice another writer on the same names"

kill -0 "$SERVER_PID" 2>/dev/null || fail "server died during the test"
log "PASS"
