#!/usr/bin/env bash
# Installs every Debian package the build and the tests need; with --bench
# also the peers of the side-by-side benchmark (bench/compare/run.sh).
# Idempotent: when everything is already installed it does nothing (and does
# not touch the network). Runs apt-get as root, or through sudo.
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build pkg-config git clang-format
  # libraries
  libboost1.81-dev libboost-json1.81-dev libsimdjson-dev libspdlog-dev libcli11-dev
  libpq-dev libcurl4-openssl-dev libssl-dev zlib1g-dev
  # PromQL's regular expressions (src/query); snappy for remote write
  libre2-dev libsnappy-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev postgresql curl procps wrk openssl
  # the reference the query tests compare with (query_prometheus_compat)
  prometheus
  # vmagent, a remote-write sender the remote write in test uses (remote_write_process_test)
  victoria-metrics
  # allocators the agent detects at run time (its tests load them)
  libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev
)

if [[ "${1:-}" == "--bench" ]]; then
  PACKAGES+=(victoria-metrics prometheus-pushgateway nginx)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#PACKAGES[@]} packages are installed" >&2
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
echo "setup: installing ${missing[*]}" >&2
"${SUDO[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
