#!/usr/bin/env bash
# The one command that runs every test: installs what is missing, prepares a
# local PostgreSQL for the storage tests, builds and runs ctest.
#
#   scripts/test.sh                 # release build, all tests
#   scripts/test.sh --preset debug  # the same under ASan+UBSan (also: tsan)
set -euo pipefail
cd "$(dirname "$0")/.."

preset=release
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) preset="$2"; shift 2 ;;
    --preset=*) preset="${1#*=}"; shift ;;
    *) echo "test.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

scripts/setup.sh

# The PostgreSQL tests run against a real server; in CI they must not skip.
if [[ -z "${METRICS_TEST_PG_DSN:-}" ]]; then
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
  METRICS_TEST_PG_DSN="$("${SUDO[@]}" scripts/postgres-setup.sh | tail -n1)"
  export METRICS_TEST_PG_DSN
fi

# A compiler cache when the machine has one (scripts/setup.sh does not
# install it; .ci/run does): a build of the same sources in another checkout,
# or after a clean, compiles only what changed. Paths are taken relative to
# this checkout, so a clone elsewhere hits the same entries. METRICS_CCACHE=0
# turns it off.
launcher=()
if [[ "${METRICS_CCACHE:-1}" != 0 ]] && command -v ccache >/dev/null 2>&1; then
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
  export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
  export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-25G}"
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  echo "test.sh: compiling through ccache ($(ccache --version | head -n1))" >&2
fi

cmake --preset "$preset" "${launcher[@]}"
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)"
