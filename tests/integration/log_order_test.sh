#!/usr/bin/env bash
# The server's stderr is one log in one format, in time order: starts
# metrics-server with the access log on, sends requests from several
# connections at once (with a connection limit low enough that the accept
# loop logs warnings in between), stops it with SIGTERM right after the
# last answer, and requires that
#   - every line is "<RFC 3339 UTC stamp with ms> <level> <text>",
#     e.g. 2026-12-01T18:49:50.561Z info POST /update/gauge/A/1 200 0B 41us;
#   - the stamps never go backwards from one line to the next;
#   - every request answered 200 has its access line, and all of them come
#     before "signal 15: shutting down", which comes before "stopped".
#
#   log_order_test.sh --server BIN
set -euo pipefail

SERVER=
while [[ $# -gt 0 ]]; do
  case $1 in
    --server) SERVER=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "log-order-test: $*" >&2; }
fail() { log "FAIL: $*"; log "server log:"; cat "$WORK/server.log" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/log-order-test.XXXXXX")
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$SERVER" -a 127.0.0.1:0 -f "" --history-dir "" --log-level info --threads 2 --max-connections 3 \
  2>"$WORK/server.log" &
SERVER_PID=$!
PORT=
for _ in $(seq 1 150); do
  PORT=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$WORK/server.log" | head -n1)
  [[ -n $PORT ]] && break
  sleep 0.1
done
[[ -n $PORT ]] || fail "the server did not log its port"

# 8 clients at once, 25 requests each on kept-alive connections; some are
# refused by the connection limit. Each answer's status is recorded: every
# 200 must have its access line.
client() {
  local c=$1 urls=() i
  for i in $(seq 1 25); do urls+=("http://127.0.0.1:$PORT/update/counter/c$c/$i"); done
  curl -sS -X POST -o /dev/null -w '%{http_code}\n' "${urls[@]}" >"$WORK/codes.$c" 2>/dev/null || true
}
pids=()
for c in $(seq 1 8); do client "$c" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
answered=$(cat "$WORK"/codes.* | grep -c '^200$' || true)
((answered > 0)) || fail "no request was answered"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "the server exited non-zero after SIGTERM"
SERVER_PID=

awk -v answered="$answered" '
  BEGIN { bad = 0 }
  {
    if ($0 !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9][0-9][0-9]Z (trace|debug|info|warning|error|critical) ./) {
      print "not in the log format: " $0; bad = 1; next
    }
    if ($1 < prev) { print "stamp goes backwards: " prev " then " $0; bad = 1 }
    prev = $1
    if ($3 == "POST" && $4 ~ /^\/update\/counter\//) {
      if ($5 == "200") ok++
      if (signal_at) { print "access line after the shutdown line: " $0; bad = 1 }
    }
    if ($0 ~ / info signal 15: shutting down$/) signal_at = NR
    if ($0 ~ / info stopped$/) { stopped_at = NR; if (!signal_at) { print "stopped before the signal line"; bad = 1 } }
  }
  END {
    if (ok != answered) { print "expected " answered " access lines of answered updates, found " ok; bad = 1 }
    if (!signal_at || !stopped_at) { print "missing the shutdown or stopped line"; bad = 1 }
    exit bad
  }
' "$WORK/server.log" >"$WORK/verdict" || fail "$(cat "$WORK/verdict")"
log "ok: $(wc -l <"$WORK/server.log") lines, $answered answered updates, in order, one format ($(grep -c 'connection limit' "$WORK/server.log" || true) connection-limit warnings among them)"
