#!/usr/bin/env bash
# The one command that starts the system: installs what is missing, builds,
# starts metrics-server (in-memory storage persisted to data/metrics-db.json
# in the project folder; no database needed) and, when it is built, a
# metrics-agent reporting to it. Open http://localhost:8080/ to watch.
# Ctrl-C stops both gracefully.
#
#   scripts/run.sh                    # server on localhost:8080 + agent
#   scripts/run.sh -a localhost:9090  # another address, for both programs
#   ADDRESS=localhost:9090 scripts/run.sh  # the same (ADDRESS, when set, wins, as in the programs)
#   scripts/run.sh -f "" -i 0         # extra flags go to the server
#
# The address is ADDRESS, else the -a given here, else localhost:8080 (the
# programs' own rule: the environment wins over the flag); it is
# passed as -a to the server and to the agent (ADDRESS is removed from their
# environment, so that no precedence rule can make them disagree), and the
# readiness check asks that address. The storage file is the -f given here,
# else FILE_STORAGE_PATH, else data/metrics-db.json (the folder is created;
# it is not shared with anything else on the machine). The history dir is the
# --history-dir given here, else HISTORY_DIR, else data/history.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# The server's -a and -f, in every spelling the server accepts
# (-a X, -a=X, --a X, --a=X); every other argument goes through unchanged.
address="" file_given="" history_given=""
server_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -a | --a)
      [[ $# -ge 2 ]] || { echo "run.sh: $1 needs a value" >&2; exit 2; }
      address="$2"; shift 2 ;;
    -a=* | --a=*) address="${1#*=}"; shift ;;
    -f | --f)
      [[ $# -ge 2 ]] || { echo "run.sh: $1 needs a value" >&2; exit 2; }
      file_given=1; server_args+=(-f "$2"); shift 2 ;;
    -f=* | --f=*) file_given=1; server_args+=("$1"); shift ;;
    --history-dir)
      [[ $# -ge 2 ]] || { echo "run.sh: $1 needs a value" >&2; exit 2; }
      history_given=1; server_args+=(--history-dir "$2"); shift 2 ;;
    --history-dir=*) history_given=1; server_args+=("$1"); shift ;;
    *) server_args+=("$1"); shift ;;
  esac
done
address="${ADDRESS:-${address:-localhost:8080}}"
if [[ -z "$file_given" && -z "${FILE_STORAGE_PATH+set}" ]]; then
  mkdir -p "$root/data"
  server_args+=(-f "$root/data/metrics-db.json")
fi
if [[ -z "$history_given" && -z "${HISTORY_DIR+set}" ]]; then
  mkdir -p "$root/data/history"
  server_args+=(--history-dir "$root/data/history")
fi
# The example alerting rules (docs/ALERTING.md), unless rules are given.
if [[ -z "${RULES+set}" && " ${server_args[*]} " != *" --rules "* ]]; then
  server_args+=(--rules "$root/rules/examples.yml")
fi
# ":8080" and "0.0.0.0:8080" listen on every interface; ask localhost.
host="${address%:*}" port="${address##*:}"
case "$host" in "" | 0.0.0.0 | "[::]") host=localhost ;; esac
url="http://${host}:${port}"

scripts/setup.sh
cmake --preset release >/dev/null
targets=(metrics-server)
if [[ -f apps/metrics-agent/CMakeLists.txt ]]; then targets+=(metrics-agent); fi
cmake --build --preset release -j "$(nproc)" --target "${targets[@]}"

bin=build/release/apps
server_pid=""
agent_pid=""
# The children run in their own sessions, so Ctrl-C reaches only this script,
# which stops the agent first (its last report still reaches the server) and
# then the server (which writes its file storage).
stop() {
  if [[ -n "$agent_pid" ]]; then kill -TERM "$agent_pid" 2>/dev/null || true; wait "$agent_pid" || true; fi
  if [[ -n "$server_pid" ]]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" || true; fi
  exit 0
}
trap stop INT TERM

setsid env -u ADDRESS "$bin/metrics-server/metrics-server" -a "$address" "${server_args[@]}" &
server_pid=$!
ready=""
for _ in $(seq 1 50); do
  if curl -fsS "${url}/ping" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$ready" ]]; then
  if ! kill -0 "$server_pid" 2>/dev/null; then
    rc=0; wait "$server_pid" || rc=$?
    echo "run.sh: the server stopped (exit $rc) before answering on ${url}/ping" >&2
    exit 1
  fi
  echo "run.sh: the server does not answer on ${url}/ping yet; starting the agent anyway" >&2
fi
if [[ -x "$bin/metrics-agent/metrics-agent" ]]; then
  # The server's settings are not the agent's: keep only KEY.
  setsid env -u ADDRESS -u STORE_INTERVAL -u FILE_STORAGE_PATH -u RESTORE -u DATABASE_DSN \
    "$bin/metrics-agent/metrics-agent" -a "${host}:${port}" -p 1s -r 2s &
  agent_pid=$!
fi
echo "run.sh: server at ${url}/ (Ctrl-C to stop)" >&2
rc=0
wait "$server_pid" || rc=$?
server_pid=""
# The server stopped on its own: the agent has nothing to report to.
if [[ -n "$agent_pid" ]]; then kill -TERM "$agent_pid" 2>/dev/null || true; wait "$agent_pid" || true; fi
exit "$rc"
