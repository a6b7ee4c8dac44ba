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
  # the body fingerprint of idempotency keys (header-only XXH3)
  libxxhash-dev
  # PromQL's regular expressions (src/query); snappy for remote write
  libre2-dev libsnappy-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev postgresql curl procps wrk openssl
  # the reference the query tests compare with (query_prometheus_compat)
  prometheus
  # a remote-write receiver of the remote write out tests (remote_write_process_test), vmagent, a sender of the remote write in test (remote_write_in_process_test), and vmalert (scale_out_test)
  victoria-metrics
  # rule files (src/rules) and the Alertmanager the alerting tests compare with
  libyaml-cpp-dev prometheus-alertmanager
  # the load balancer of the scale-out test (scale_out_test, docs/SCALING.md)
  nginx
  # allocators the agent detects at run time (its tests load them)
  libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev
  # the web UI's browser test (playwright-core drives it; tests/ui)
  chromium
)

if [[ "${1:-}" == "--bench" ]]; then
  PACKAGES+=(prometheus-pushgateway)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm build the web UI (uPlot from node_modules) and run its
# browser test; a machine that has them already keeps its own (Debian's npm
# package would replace a newer npm).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#PACKAGES[@]} packages are installed" >&2
else
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
  echo "setup: installing ${missing[*]}" >&2
  "${SUDO[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The npm packages pinned in package-lock.json (uPlot, embedded into the
# server at build time; playwright-core for the browser test, which uses
# Debian's chromium: no browser is ever downloaded). Skipped when
# node_modules is newer than the lock file.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -f "$root/node_modules/.package-lock.json" ||
      "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]]; then
  echo "setup: npm ci (node_modules)" >&2
  (cd "$root" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
