#!/usr/bin/env bash
# The file storage when its disk fills up or turns read-only, at server level:
# a write that cannot be made durable gets 503 with Retry-After and a log
# line naming the cause, stores nothing, and leaves what is already stored
# intact and readable; when room comes back the server resumes by itself.
#
#   disk_full_test.sh --server BIN
#
# The disk is a small tmpfs mounted in a private mount namespace: the script
# re-runs itself under `unshare --mount` (with --map-root-user when not run
# as root), so the mount vanishes with it and the host is never touched.
# Without namespaces it exits 77 (skipped), or 1 when CI is set.
set -euo pipefail
# A server's environment wins over its flags: none of the caller's settings
# may reach the servers started here.
unset ADDRESS DATABASE_DSN FILE_STORAGE_PATH STORE_INTERVAL RESTORE KEY CONFIG ALLOW_UNSIGNED \
  TLS_CERT TLS_KEY LOG_LEVEL

SERVER=
while [[ $# -gt 0 ]]; do
  case $1 in
    --server) SERVER=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "disk-test: $*" >&2; }
fail() { log "FAIL: $*"; [[ -f ${WORK:-}/server.log ]] && tail -n 20 "$WORK/server.log" >&2; exit 1; }

if [[ -z ${DISK_TEST_IN_NAMESPACE:-} ]]; then
  ns=(--mount --propagation private)
  [[ $(id -u) == 0 ]] || ns+=(--map-root-user)
  if ! unshare "${ns[@]}" true 2>/dev/null; then
    [[ -n ${CI:-} ]] && { log "FAIL: cannot create a mount namespace (unshare ${ns[*]})"; exit 1; }
    log "cannot create a mount namespace: skipping"
    exit 77
  fi
  DISK_TEST_IN_NAMESPACE=1 exec unshare "${ns[@]}" bash "$0" --server "$SERVER"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/disk-test.XXXXXX")
DISK=$WORK/disk
SERVER_PID=
stop_server() {  # stop_server [SIGNAL]
  [[ -n $SERVER_PID ]] || return 0
  kill "-${1:-TERM}" "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
cleanup() {
  stop_server KILL
  umount "$DISK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$DISK"
mount -t tmpfs -o size=8m tmpfs "$DISK" || fail "cannot mount a tmpfs"

PORT=0
# start_server ARGS...: starts on $PORT (0 the first time, then the same port).
start_server() {
  : >"$WORK/server.log"
  "$SERVER" -a "127.0.0.1:$PORT" -f "$DISK/metrics.json" -r=true --history-dir "" --access-log=false \
    --log-level info "$@" 2>>"$WORK/server.log" &
  SERVER_PID=$!
  local port=
  for _ in $(seq 1 150); do
    port=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$WORK/server.log" | head -n1)
    [[ -n $port ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited at start"
    sleep 0.1
  done
  [[ -n $port ]] || fail "server did not report its port within 15 s"
  PORT=$port
}

URL() { echo "http://127.0.0.1:$PORT$1"; }
# status METHOD PATH [BODY_FILE]: the status code; headers in $WORK/h, body in $WORK/b.
status() {
  local args=(-s -o "$WORK/b" -D "$WORK/h" -w '%{http_code}' --max-time 5 -X "$1")
  [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' --data-binary "@$3")
  curl "${args[@]}" "$(URL "$2")" || echo 000
}
expect() {  # expect WANT METHOD PATH [BODY_FILE]
  local want=$1; shift
  local got
  got=$(status "$@")
  [[ $got == "$want" ]] || fail "$* answered $got, expected $want: $(head -c 300 "$WORK/b")"
}
value() {  # value TYPE NAME: the text value, or "missing"
  local got
  got=$(status GET "/value/$1/$2")
  [[ $got == 200 ]] && cat "$WORK/b" || echo missing
}
expect_value() {  # expect_value TYPE NAME WANT
  local got
  got=$(value "$1" "$2")
  [[ $got == "$3" ]] || fail "$1 $2 holds $got, expected $3"
}
# batch FILE VALUE: 300 gauges bulk_0..bulk_299 = VALUE, ~12 KiB of log record,
# so that writing it needs fresh pages of the disk.
batch() {
  local names
  names=$(printf 'bulk_gauge_with_a_long_name_to_fill_pages_%03d ' $(seq 0 299))
  {
    printf '['
    local first=1
    for n in $names; do
      [[ $first == 1 ]] || printf ','
      first=0
      printf '{"id":"%s","type":"gauge","value":%s}' "$n" "$2"
    done
    printf ']'
  } >"$1"
}
fill_disk() {  # fill_disk [LEAVE_BYTES]: fills the tmpfs, leaving about LEAVE_BYTES free
  local leave=${1:-0}
  rm -f "$DISK/fill"
  if [[ $leave == 0 ]]; then
    dd if=/dev/zero of="$DISK/fill" bs=4k 2>/dev/null || true
  else
    local avail
    avail=$(df -B1 --output=avail "$DISK" | tail -n1 | tr -d ' ')
    ((avail > leave)) || fail "only $avail bytes free before filling"
    dd if=/dev/zero of="$DISK/fill" bs=4k count=$(((avail - leave) / 4096)) 2>/dev/null
  fi
}
free_disk() { rm -f "$DISK/fill"; }

# write_until_refused PREFIX: posts 300-gauge batches with the values
# PREFIX1.5, PREFIX2.5, ... until one is refused (bounded); LAST is the number
# of the last one acknowledged, GREW_AFTER_WARNING how many were acknowledged
# after the log said the file could not grow.
write_until_refused() {
  LAST=0 GREW_AFTER_WARNING=0
  local code warned=0
  for i in $(seq 1 400); do
    batch "$WORK/w.json" "$1$i.5"
    grep -q 'cannot grow' "$WORK/server.log" && warned=1
    code=$(status POST /updates/ "$WORK/w.json")
    case $code in
      200) LAST=$i; ((GREW_AFTER_WARNING += warned)) || true ;;
      503) return 0 ;;
      *) fail "a batch answered $code: $(head -c 300 "$WORK/b")" ;;
    esac
  done
  fail "400 batches of 12 KiB all fitted on a full 8 MiB disk"
}
bulk() { echo "bulk_gauge_with_a_long_name_to_fill_pages_$1"; }

batch "$WORK/v1.json" 1.25

# 1. Synchronous mode stores normally.
start_server -i 0
log "server on 127.0.0.1:$PORT, file storage on a tmpfs of 8 MiB"
expect 200 POST /update/counter/c/5
expect 200 POST /update/counter/c/5
expect 200 POST /update/gauge/g/1.5
expect 200 POST /updates/ "$WORK/v1.json"

# 2. The disk fills up. The log's preallocated room is used first; then a
# write gets 503 + Retry-After naming the cause and stores nothing.
fill_disk
write_until_refused 2
grep -qi '^Retry-After:' "$WORK/h" || fail "a 503 without Retry-After"
grep -q 'No space left on device' "$WORK/b" || fail "the 503 does not say why: $(cat "$WORK/b")"
grep -q 'error.*No space left on device' "$WORK/server.log" || fail "no error line in the log"
expect 503 POST /update/counter/c/7
log "disk full after $LAST more batches: writes answer 503 ($(tr -d '\n' <"$WORK/b"))"

# 3. Reads keep working and show only what was acknowledged.
want=1.25
((LAST > 0)) && want=2$LAST.5
expect_value counter c 10
expect_value gauge g 1.5
expect_value gauge "$(bulk 000)" "$want"
expect_value gauge "$(bulk 299)" "$want"
printf '{"id":"c","type":"counter"}' >"$WORK/read.json"
expect 200 POST /value/ "$WORK/read.json"
grep -q '"delta":10' "$WORK/b" || fail "POST /value/ answered $(cat "$WORK/b")"
expect 200 GET /
expect 500 GET /ping

# 4. Room comes back: the server resumes by itself.
free_disk
batch "$WORK/v2.json" 2.5
expect 200 POST /update/counter/c/1
expect 200 POST /updates/ "$WORK/v2.json"
expect 200 GET /ping
expect_value counter c 11
expect_value gauge "$(bulk 150)" 2.5
log "room back: writes answer 200 again"

# 5. Full again until a write is refused, then kill -9: after a restart with
# room, everything acknowledged is there and the refused write is not.
fill_disk
write_until_refused 3
want=2.5
((LAST > 0)) && want=3$LAST.5
stop_server KILL
free_disk
start_server -i 0
expect_value counter c 11
expect_value gauge g 1.5
expect_value gauge "$(bulk 299)" "$want"
expect 200 GET /ping
log "after kill -9 and restart: acknowledged data intact ($want), refused write absent"

# 6. Nearly full: no room for the log's next 1 MiB growth step, but room for
# records. Writes must go on after the growth fails, until the disk is full.
fill_disk $((256 * 1024))
write_until_refused 4
((GREW_AFTER_WARNING > 0)) ||
  fail "no write succeeded once the log could not grow (acknowledged: $LAST)"
want=4$LAST.5
stop_server TERM
free_disk
start_server -i 0
expect_value gauge "$(bulk 000)" "$want"
expect_value counter c 11
log "nearly full disk: $GREW_AFTER_WARNING batches written after the growth step failed"
stop_server TERM

# 7. A read-only disk at start: the server starts and serves what it restored,
# refuses writes with 503, reports itself unhealthy and changes no file.
before=$(cd "$DISK" && sha256sum ./* | sort)
mount -o remount,ro "$DISK" || fail "cannot remount the tmpfs read-only"
start_server -i 0
expect_value counter c 11
expect 503 POST /update/counter/c/1
grep -q 'Read-only file system' "$WORK/b" || fail "the 503 does not say why: $(cat "$WORK/b")"
expect 500 GET /ping
stop_server TERM
after=$(cd "$DISK" && sha256sum ./* | sort)
[[ $before == "$after" ]] || fail "files changed on a read-only disk"
mount -o remount,rw "$DISK"
log "read-only disk: reads served, writes 503, files unchanged"

# 8. Interval mode: a snapshot that cannot be written is logged and turns
# /ping to 500; when the disk is writable again the next snapshot heals it.
start_server -i 1
expect 200 POST /update/counter/c/1
mount -o remount,ro "$DISK" || fail "cannot remount the tmpfs read-only"
expect 200 POST /update/counter/c/1
ok=0
for _ in $(seq 1 50); do
  [[ $(status GET /ping) == 500 ]] && { ok=1; break; }
  sleep 0.1
done
[[ $ok == 1 ]] || fail "/ping stayed healthy while snapshots failed"
grep -q 'error.*cannot write snapshot.*Read-only file system' "$WORK/server.log" ||
  fail "no error line for the failed snapshot"
mount -o remount,rw "$DISK"
ok=0
for _ in $(seq 1 50); do
  [[ $(status GET /ping) == 200 ]] && { ok=1; break; }
  sleep 0.1
done
[[ $ok == 1 ]] || fail "/ping did not recover after the disk became writable"
stop_server KILL
start_server -i 1
expect_value counter c 13
log "interval mode: failed snapshot logged and reported, healed by the next one"

kill -0 "$SERVER_PID" 2>/dev/null || fail "server died"
log "PASS"
