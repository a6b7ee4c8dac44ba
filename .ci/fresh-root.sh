#!/usr/bin/env bash
# CI stage: the README's two commands on a fresh Debian 12, as a new user
# would run them. Creates a minimal Debian root with debootstrap, puts a clean
# clone of this repository's HEAD in it, and inside a chroot:
#   1. scripts/setup.sh    the install step, with the network (apt-get);
#   2. scripts/test.sh     every test, release preset, inside `unshare -n`
#                          (a private network namespace with only loopback),
#                          so its PostgreSQL meets no other one;
#   3. scripts/run.sh      started, checked with curl (the page answers and an
#                          agent metric arrives), stopped with SIGTERM.
# A package, a path or a port that the scripts assume but do not install or
# set up fails here, not on a user's machine.
#
#   .ci/fresh-root.sh [--dir DIR] [--keep]
#
# Must run as root, with debootstrap installed. DIR (default build/fresh-root
# in the project) is removed first and, unless --keep, at the end. The mirror
# is debootstrap's default unless MIRROR is set. Everything runs in a private
# mount namespace: the mounts of the root (/proc, /sys, /dev, /dev/pts,
# /dev/shm, /tmp) never reach the host's mount table, and the exit trap
# stops what runs in the root and unmounts them before anything is removed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir="$repo/build/fresh-root"
keep=""
args=("$@")
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "fresh-root: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { echo "fresh-root [$(date -u +%H:%M:%S)]: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (debootstrap, chroot, mounts)"
  exit 1
fi
command -v debootstrap >/dev/null || { log "debootstrap is not installed"; exit 1; }

# Re-run in a private mount namespace: nothing mounted below can leak out.
if [[ -z "${FRESH_ROOT_INNER:-}" ]]; then
  exec env FRESH_ROOT_INNER=1 unshare --mount --propagation private "$0" "${args[@]}"
fi

mkdir -p "$(dirname "$dir")"
dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")
start=$SECONDS

# Processes whose root directory is inside the fresh root (the PostgreSQL
# the tests started, anything run.sh left): their ids, by /proc/PID/root.
root_pids() {
  local p link
  for p in /proc/[0-9]*; do
    link=$(readlink "$p/root" 2>/dev/null) || continue
    if [[ "$link" == "$dir" || "$link" == "$dir"/* ]]; then echo "${p#/proc/}"; fi
  done
}
unmount_all() {
  local m
  # Deepest first.
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET | grep -E "^${dir}(/|$)" | sort -r)
}
cleanup() {
  local rc=$? pids
  set +e
  pids=$(root_pids)
  if [[ -n "$pids" ]]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null
    sleep 2
    pids=$(root_pids)
    # shellcheck disable=SC2086
    [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null
  fi
  unmount_all
  if findmnt -rn -o TARGET | grep -qE "^${dir}(/|$)"; then
    log "still mounted below $dir; leaving it in place"
  elif [[ -z "$keep" ]]; then
    rm -rf --one-file-system "$dir"
  fi
  log "finished (exit $rc) after $((SECONDS - start)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

unmount_all
rm -rf --one-file-system "$dir"

log "debootstrap --variant=minbase bookworm $dir"
t=$SECONDS
debootstrap --variant=minbase bookworm "$dir" ${MIRROR:+"$MIRROR"} >"$dir.debootstrap.log" 2>&1 || {
  tail -n 30 "$dir.debootstrap.log" >&2
  exit 1
}
log "root created in $((SECONDS - t)) s"

# What any container or chroot image gets: name resolution for apt, a hosts
# file for localhost, and no daemons started by package scripts (the tests
# start their own PostgreSQL inside the network namespace).
cp /etc/resolv.conf "$dir/etc/resolv.conf"
# The machine's own certificate authorities (a network that inspects TLS
# has one, which the host trusts) and npm's settings, as a user's machine
# behind it would have them: npm ci (scripts/setup.sh) fetches over TLS.
# ca-certificates, installed by setup.sh, adds these to the system bundle.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$dir/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
fi
if [[ -f /etc/npmrc ]]; then cp /etc/npmrc "$dir/etc/npmrc"; fi
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$dir/etc/hosts"
printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
chmod 755 "$dir/usr/sbin/policy-rc.d"

log "cloning $(git -C "$repo" rev-parse --short HEAD) into /src/metrics"
git clone -q --no-hardlinks "$repo" "$dir/src/metrics"
git -C "$dir/src/metrics" checkout -q --detach "$(git -C "$repo" rev-parse HEAD)"

# The root is a mount point of its own, so that inside the chroot "/" can
# be made private: the disk-full test's `unshare --mount --propagation
# private` fails in a chroot whose "/" is a plain folder.
mount --bind "$dir" "$dir"
mount -t proc proc "$dir/proc"
mount -t sysfs sysfs "$dir/sys"
mount --bind /dev "$dir/dev"
mount --bind /dev/pts "$dir/dev/pts"
mount -t tmpfs -o mode=1777 shm "$dir/dev/shm"
mount -t tmpfs -o mode=1777 tmpfs "$dir/tmp"

# in_root CMD: runs CMD with bash in the root, in the clone, with a clean
# environment (CI set, so that the PostgreSQL tests fail rather than skip).
# CMD follows the cd on a line of its own: "cd && CMD &" would put the cd and
# CMD together in the background, so that CMD's $! is a subshell, not CMD.
in_root() {
  chroot "$dir" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI=true \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "cd /src/metrics || exit 1
$1"
}
# offline CMD: the same in a new network namespace with only loopback up.
offline() {
  unshare -n /bin/bash -c 'ip link set lo up && in_root "$1"' offline "$1"
}
export -f in_root
export dir

log "step 1/3: scripts/setup.sh (the install step, with the network)"
t=$SECONDS
in_root "scripts/setup.sh"
log "installed in $((SECONDS - t)) s"

log "step 2/3: scripts/test.sh, in a network namespace of its own"
t=$SECONDS
offline "scripts/test.sh"
log "scripts/test.sh passed in $((SECONDS - t)) s"

log "step 3/3: scripts/run.sh, checked with curl, then stopped"
t=$SECONDS
offline '
  scripts/run.sh >/tmp/run.log 2>&1 &
  pid=$!
  ok=""
  for _ in $(seq 1 120); do
    if curl -fsS http://localhost:8080/value/counter/PollCount >/dev/null 2>&1 &&
       curl -fsS http://localhost:8080/ | grep -q PollCount; then ok=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -TERM "$pid" 2>/dev/null || true
  rc=0; wait "$pid" || rc=$?
  cat /tmp/run.log >&2
  if [[ -z "$ok" ]]; then echo "run.sh: no agent metric arrived on localhost:8080" >&2; exit 1; fi
  if [[ $rc -ne 0 ]]; then echo "run.sh: exit $rc after SIGTERM" >&2; exit 1; fi
  test -s data/metrics-db.json || { echo "run.sh: data/metrics-db.json not written" >&2; exit 1; }
  echo "run.sh: agent metrics arrived, stopped cleanly, data/metrics-db.json written" >&2
'
log "scripts/run.sh checked in $((SECONDS - t)) s"
