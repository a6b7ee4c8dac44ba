#!/usr/bin/env bash
# The one command that starts the system: installs what is missing, builds,
# starts metrics-server (in-memory storage persisted to FILE_STORAGE_PATH,
# default /tmp/metrics-db.json; no database needed) and, when it is built, a
# metrics-agent reporting to it. Open http://localhost:8080/ to watch.
# Ctrl-C stops both gracefully.
#
#   scripts/run.sh                    # server on localhost:8080 + agent
#   ADDRESS=localhost:9090 scripts/run.sh
#   scripts/run.sh -a localhost:9090  # the same (ADDRESS, when set, wins)
#   scripts/run.sh -f "" -i 0         # extra flags go to the server
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cmake --preset release >/dev/null
targets=(metrics-server)
if [[ -f apps/metrics-agent/CMakeLists.txt ]]; then targets+=(metrics-agent); fi
cmake --build --preset release -j "$(nproc)" --target "${targets[@]}"

# Where the server listens, by its own rule (ADDRESS wins over -a, -a over
# the default): the readiness check and the agent go there.
address=localhost:8080
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    -a | --a) if ((i + 1 < ${#args[@]})); then address=${args[i + 1]}; fi; i=$((i + 1)) ;;
    -a=* | --a=*) address=${args[i]#*=} ;;
  esac
done
address=${ADDRESS:-$address}
if [[ $address == :* ]]; then address="localhost$address"; fi
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

setsid "$bin/metrics-server/metrics-server" "$@" &
server_pid=$!
for _ in $(seq 1 50); do
  curl -fsS "http://${address}/ping" >/dev/null 2>&1 && break
  sleep 0.1
done
if [[ -x "$bin/metrics-agent/metrics-agent" ]]; then
  # The server's settings are not the agent's: keep only ADDRESS and KEY.
  setsid env -u STORE_INTERVAL -u FILE_STORAGE_PATH -u RESTORE -u DATABASE_DSN \
    ADDRESS="$address" "$bin/metrics-agent/metrics-agent" -p 1s -r 2s &
  agent_pid=$!
fi
echo "run.sh: server at http://${address}/ (Ctrl-C to stop)" >&2
wait "$server_pid"
