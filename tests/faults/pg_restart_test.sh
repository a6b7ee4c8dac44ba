#!/usr/bin/env bash
# Fault test: PostgreSQL restarted under load.
#
# Creates a private, throwaway PostgreSQL 15 cluster (never the shared system
# one, which other tests use in parallel), starts metrics-server on it and
# drives the server with metrics-loadgen (50 paced agents, gzip batches) while
# the database is
#   1. stopped with `pg_ctl stop -m fast` for about 3 s, then started again;
#   2. crashed with `pg_ctl stop -m immediate` for about 2 s, then started
#      again (crash recovery).
# While it is down, GET /ping must answer 500 and a write must answer 503
# promptly (within $MAX_DOWN_ANSWER_S, not after the retries). After each
# start the server must reconnect by itself: /ping 200 and a write 200 within
# $MAX_RECONNECT_S. At the end the load generator's integrity check must pass
# (nothing acknowledged lost, nothing rejected stored), with 503s seen, and the
# probe counter written by this script must hold every acknowledged probe.
#
#   pg_restart_test.sh --server BIN --loadgen BIN [--idempotency-keys]
#
# With --idempotency-keys the generator sends a key with every request and
# resends every request in doubt (a 500 of a commit whose outcome is unknown,
# a timeout) with it; the key is committed in the write's transaction, so the
# run must then end with 0 requests in doubt and an exact check.
#
# PostgreSQL binaries are taken from $PG_BINDIR (/usr/lib/postgresql/15/bin).
# When they are missing the test exits 77 (skipped), or fails when CI is set:
# CI must never skip silently. initdb and postgres refuse to run as root, so as
# root they run as the postgres user (runuser). Exit 0 on success. Set
# KEEP_WORK=1 to keep the temporary folder (logs, cluster) for a post-mortem.
set -euo pipefail
# A server's environment wins over its flags: none of the caller's settings
# may reach the servers started here.
unset ADDRESS DATABASE_DSN FILE_STORAGE_PATH STORE_INTERVAL RESTORE KEY CONFIG ALLOW_UNSIGNED \
  TLS_CERT TLS_KEY LOG_LEVEL

SERVER='' LOADGEN='' KEY_FLAGS=()
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
MAX_DOWN_ANSWER_S=${MAX_DOWN_ANSWER_S:-2}
MAX_RECONNECT_S=${MAX_RECONNECT_S:-15}
while [[ $# -gt 0 ]]; do
  case $1 in
    --server) SERVER=$2; shift 2 ;;
    --loadgen) LOADGEN=$2; shift 2 ;;
    --idempotency-keys) KEY_FLAGS=(--idempotency-keys); shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "pg-restart-test: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

[[ -x $SERVER && -x $LOADGEN ]] || fail "usage: $0 --server BIN --loadgen BIN"
command -v curl >/dev/null || fail "curl is needed"
for bin in initdb pg_ctl postgres; do
  if [[ ! -x $PG_BINDIR/$bin ]]; then
    if [[ -n ${CI:-} ]]; then
      fail "$PG_BINDIR/$bin is missing and CI is set: this test must not be skipped in CI"
    fi
    log "$PG_BINDIR/$bin is missing: skipping (install postgresql-15)"
    exit 77
  fi
done

AS_PG=()
if [[ $(id -u) == 0 ]]; then
  id postgres >/dev/null 2>&1 || fail "running as root needs a 'postgres' user for initdb/postgres"
  AS_PG=(runuser -u postgres --)
fi
pgbin() { "${AS_PG[@]}" "$PG_BINDIR/$1" "${@:2}"; }

# The cluster lives in the work folder, so the postgres user must own it and
# reach it; TMPDIR may be a folder it cannot traverse, /tmp always works.
make_work() { mktemp -d "$1/pg-restart-test.XXXXXX"; }
WORK=$(make_work "${TMPDIR:-/tmp}")
if [[ ${#AS_PG[@]} -gt 0 ]]; then
  chown postgres: "$WORK"
  if ! "${AS_PG[@]}" test -w "$WORK"; then
    rmdir "$WORK"
    WORK=$(make_work /tmp)
    chown postgres: "$WORK"
    "${AS_PG[@]}" test -w "$WORK" || fail "the postgres user cannot write to $WORK"
  fi
fi
PGDATA=$WORK/pgdata
PG_PORT=
SERVER_PID=
LOADGEN_PID=

cleanup() {
  local rc=$?
  set +e
  if [[ -n $LOADGEN_PID ]] && kill -0 "$LOADGEN_PID" 2>/dev/null; then
    kill -KILL "$LOADGEN_PID" 2>/dev/null
  fi
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  if [[ -f $PGDATA/postmaster.pid ]]; then
    local pm
    pm=$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null)
    timeout 30 "${AS_PG[@]}" "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
    if [[ $pm =~ ^[0-9]+$ ]] && kill -0 "$pm" 2>/dev/null; then kill -KILL "$pm" 2>/dev/null; fi
  fi
  if [[ $rc != 0 ]]; then
    for f in server.log pg.log loadgen.err; do
      [[ -f $WORK/$f ]] && { log "--- last lines of $f"; tail -n 40 "$WORK/$f" >&2; }
    done
  fi
  if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT

# Room for the connections on both sides (the generator raises its own limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

log "initdb in $PGDATA"
timeout 120 "${AS_PG[@]}" "$PG_BINDIR/initdb" -D "$PGDATA" --auth=trust -U postgres -E UTF8 \
  --no-sync >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; fail "initdb failed"; }

pg_start() {
  timeout 90 "${AS_PG[@]}" "$PG_BINDIR/pg_ctl" -D "$PGDATA" -l "$WORK/pg.log" -w -t 60 \
    -o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=30" \
    start >/dev/null
}
pg_stop() {
  timeout 90 "${AS_PG[@]}" "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m "$1" -w -t 60 stop >/dev/null
}

# A free port: random, not listening now; a start that still loses the race
# (postgres cannot bind) is tried again on another port.
for attempt in 1 2 3 4 5 6; do
  PG_PORT=$((20000 + RANDOM % 30000))
  ss -Htln "sport = :$PG_PORT" 2>/dev/null | grep -q . && continue
  pg_start && break
  log "PostgreSQL did not start on port $PG_PORT (attempt $attempt)"
  PG_PORT=
done
[[ -n $PG_PORT ]] || { tail -n 20 "$WORK/pg.log" >&2; fail "could not start the private PostgreSQL"; }
log "private PostgreSQL on 127.0.0.1:$PG_PORT"

"$SERVER" -a 127.0.0.1:0 -d "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres" \
  --history-dir "" --access-log=false --log-level info 2>"$WORK/server.log" &
SERVER_PID=$!
SPORT=
for _ in $(seq 1 300); do
  SPORT=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$WORK/server.log" | head -n1)
  [[ -n $SPORT ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited at start"
  sleep 0.1
done
[[ -n $SPORT ]] || fail "server did not report its port within 30 s"
BASE=http://127.0.0.1:$SPORT
log "server pid $SERVER_PID on 127.0.0.1:$SPORT"

# http METHOD PATH [curl args]: prints "STATUS SECONDS" (000 when no answer).
http() {
  local method=$1 path=$2; shift 2
  curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 20 -X "$method" "$@" \
    "$BASE$path" || true
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
slower() { awk -v t="$1" -v max="$2" 'BEGIN { exit !(t > max) }'; }

PROBE=pgr_probe_$$
PROBE_ACKED=0 PROBE_DOUBT=0
FAILURES=()
problem() { log "PROBLEM: $*"; FAILURES+=("$*"); }
# book STATUS: keeps the books of the probe counter for the final check.
book() {
  case $1 in
    200) PROBE_ACKED=$((PROBE_ACKED + 1)) ;;
    4??|503) ;;
    *) PROBE_DOUBT=$((PROBE_DOUBT + 1)) ;;
  esac
}
# probe_write / probe_batch: one +1 to the probe counter, as a text update or
# as a JSON batch (the agents' endpoint); "STATUS SECONDS" in $R.
probe_write() {
  R=$(http POST "/update/counter/$PROBE/1")
  book "${R%% *}"
}
probe_batch() {
  R=$(http POST /updates/ -H 'Content-Type: application/json' \
    --data "[{\"id\":\"$PROBE\",\"type\":\"counter\",\"delta\":1}]")
  book "${R%% *}"
}

# wait_ping_ok LABEL: /ping 200 within MAX_RECONNECT_S; records how long.
wait_ping_ok() {
  local start r
  start=$(now_ms)
  while :; do
    r=$(http GET /ping)
    [[ ${r%% *} == 200 ]] && break
    if (($(now_ms) - start > MAX_RECONNECT_S * 1000)); then
      problem "$1: /ping did not answer 200 within $MAX_RECONNECT_S s after the start (last: $r)"
      return
    fi
    sleep 0.2
  done
  log "$1: /ping 200 again $(secs $(($(now_ms) - start))) s after PostgreSQL started"
  start=$(now_ms)
  while :; do
    probe_write
    r=$R
    [[ ${r%% *} == 200 ]] && break
    if (($(now_ms) - start > MAX_RECONNECT_S * 1000)); then
      problem "$1: no write answered 200 within $MAX_RECONNECT_S s after /ping did (last: $r)"
      return
    fi
    sleep 0.2
  done
  log "$1: a write answered 200 $(secs $(($(now_ms) - start))) s after /ping did"
}

# down_checks LABEL: while PostgreSQL is down, /ping answers 500 and writes
# answer 503 within MAX_DOWN_ANSWER_S.
down_checks() {
  local r i worst=0
  r=$(http GET /ping)
  log "$1: GET /ping -> ${r%% *} in ${r##* } s"
  [[ ${r%% *} == 500 ]] || problem "$1: /ping answered ${r%% *} while PostgreSQL was down (500 expected)"
  for i in 1 2 3; do
    if ((i == 2)); then probe_batch; else probe_write; fi
    r=$R
    log "$1: write $i -> ${r%% *} in ${r##* } s"
    [[ ${r%% *} == 503 ]] || problem "$1: write $i answered ${r%% *} while PostgreSQL was down (503 expected)"
    slower "${r##* }" "$MAX_DOWN_ANSWER_S" &&
      problem "$1: write $i took ${r##* } s to answer while PostgreSQL was down (limit $MAX_DOWN_ANSWER_S s)"
    slower "${r##* }" "$worst" && worst=${r##* }
    sleep 0.3
  done
  log "$1: slowest write answer while down: $worst s"
}

# The server answers before the load starts.
for _ in $(seq 1 100); do
  [[ $(http GET /ping) == 200* ]] && break
  sleep 0.1
done
[[ $(http GET /ping) == 200* ]] || fail "server does not answer /ping 200 at start"

# 50 agents, each paced to 20 requests/s: enough load to be in flight at each
# stop, light enough for the sanitizer builds on two cores. Not --strict: 503s
# and in-doubt answers are expected here; integrity is what is checked. The
# load must outlast the second restart (the final read-back needs the
# database): on a loaded machine a start with crash recovery took 5 s.
LOAD_S=24
timeout 150 "$LOADGEN" -a "127.0.0.1:$SPORT" --server-pid "$SERVER_PID" --json -n 50 -d ${LOAD_S}s \
  -r 20 --gzip --request-timeout 3s --run-id "pgr$$_" "${KEY_FLAGS[@]}" \
  >"$WORK/loadgen.json" 2>"$WORK/loadgen.err" &
LOADGEN_PID=$!
T0=$(now_ms)
at() {  # at SECONDS: sleep until that many seconds after the load started
  local d=$((T0 + $1 * 1000 - $(now_ms)))
  ((d > 0)) && sleep "$(secs "$d")"
  return 0
}

# outage AT MODE DOWN_MS WHAT: at AT seconds into the load, stops PostgreSQL
# with `pg_ctl stop -m MODE`, checks the server while it is down, keeps it
# down at least DOWN_MS, starts it again and waits for the server to reconnect.
outage() {
  local mode=$2 down_ms=$3 what=$4 down_start at_least
  at "$1"
  log "$what: pg_ctl stop -m $mode at $(secs $(($(now_ms) - T0))) s"
  pg_stop "$mode" || fail "pg_ctl stop -m $mode failed"
  down_start=$(now_ms)
  down_checks "$mode stop"
  at_least=$((down_start + down_ms - $(now_ms)))
  ((at_least > 0)) && sleep "$(secs "$at_least")"
  pg_start || fail "PostgreSQL did not start again after the $mode stop"
  log "PostgreSQL started again at $(secs $(($(now_ms) - T0))) s"
  wait_ping_ok "after $mode stop"
}
outage 3 fast 3000 "stopping PostgreSQL"
outage 8 immediate 2000 "crashing PostgreSQL (crash recovery at the next start)"
if (($(now_ms) - T0 > (LOAD_S - 1) * 1000)); then
  problem "PostgreSQL was back only $(secs $(($(now_ms) - T0))) s into the ${LOAD_S} s load:" \
    "too late for the load generator to read everything back (machine too slow?)"
fi

rc=0
wait "$LOADGEN_PID" || rc=$?
LOADGEN_PID=
log "loadgen exit $rc: $(cat "$WORK/loadgen.json")"
[[ -s $WORK/loadgen.err ]] && log "loadgen stderr: $(tail -n 20 "$WORK/loadgen.err")"

field() { grep -o "\"$1\":[^,}]*" "$WORK/loadgen.json" | head -n1 | cut -d: -f2 || true; }
[[ $rc == 0 ]] || problem "metrics-loadgen exited $rc"
[[ $(field mismatches) == 0 ]] || problem "loadgen: mismatches = $(field mismatches)"
[[ $(field unverified) == 0 ]] || problem "loadgen: unverified = $(field unverified)"
acked=$(field acknowledged)
[[ ${acked:-0} -gt 0 ]] || problem "loadgen: nothing acknowledged"
n503=$(field 503)
[[ ${n503:-0} -gt 0 ]] || problem "loadgen: no 503 answers, but PostgreSQL was down twice"
waits=$(field retry_after_waits)
[[ ${waits:-0} -gt 0 ]] || problem "loadgen: 503s with Retry-After, but no agent waited for one"
log "loadgen: acknowledged ${acked:-?}, 503 answers ${n503:-0}, 500 answers $(field 500)," \
  "in doubt $(field in_doubt), timeouts $(field timeouts), Retry-After waits ${waits:-0}," \
  "resent $(field resent), replayed $(field replayed)"
if [[ ${#KEY_FLAGS[@]} -gt 0 ]]; then
  [[ $(field in_doubt) == 0 ]] || problem "loadgen with keys: $(field in_doubt) requests in doubt"
  [[ $(field in_doubt_requests) == 0 ]] ||
    problem "loadgen with keys: the check counted $(field in_doubt_requests) requests in doubt"
fi

# The probe counter: every acknowledged probe is there, no rejected one is.
r=$(curl -s --max-time 20 "$BASE/value/counter/$PROBE" || true)
log "probe counter $PROBE = ${r:-?} (acknowledged $PROBE_ACKED, in doubt $PROBE_DOUBT)"
if ! [[ $r =~ ^[0-9]+$ ]] || ((r < PROBE_ACKED || r > PROBE_ACKED + PROBE_DOUBT)); then
  problem "probe counter is '${r}', expected $PROBE_ACKED..$((PROBE_ACKED + PROBE_DOUBT))"
fi

kill -0 "$SERVER_PID" 2>/dev/null || problem "the server died during the test"
if [[ ${#FAILURES[@]} -gt 0 ]]; then
  for f in "${FAILURES[@]}"; do log "FAIL: $f"; done
  exit 1
fi
log "PASS"
