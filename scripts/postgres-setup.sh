#!/usr/bin/env bash
# Prepares a local PostgreSQL 15 for the storage tests and benchmarks, and
# prints the DSN to export as METRICS_TEST_PG_DSN. Idempotent: run it as often
# as you like; it only does what is missing. Must run as root (it installs the
# package and acts as the postgres OS user).
#
# The port is the cluster's own, as pg_lsclusters reports it: Debian gives a
# new cluster 5433 (or the next free port) when another PostgreSQL already
# holds 5432, and the printed DSN names whichever port the cluster got.
#
#   export METRICS_TEST_PG_DSN="$(sudo scripts/postgres-setup.sh | tail -n1)"
set -euo pipefail

PG_VERSION=15
CLUSTER=main
ROLE=metrics
PASSWORD=metrics
DATABASE=metrics_test
HOST=127.0.0.1

log() { echo "postgres-setup: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root"
  exit 1
fi

if [[ ! -x /usr/lib/postgresql/${PG_VERSION}/bin/postgres ]]; then
  log "installing postgresql"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2; then
    # A fresh image may have no package lists yet.
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
  fi
fi

if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "${PG_VERSION} ${CLUSTER}"; then
  log "creating cluster ${PG_VERSION}/${CLUSTER}"
  pg_createcluster "${PG_VERSION}" "${CLUSTER}" >&2
fi

if ! pg_lsclusters -h | awk -v v="${PG_VERSION}" -v c="${CLUSTER}" '$1==v && $2==c {print $4}' | grep -qx online; then
  log "starting cluster ${PG_VERSION}/${CLUSTER}"
  pg_ctlcluster --skip-systemctl-redirect "${PG_VERSION}" "${CLUSTER}" start >&2
fi

PORT=$(pg_lsclusters -h | awk -v v="${PG_VERSION}" -v c="${CLUSTER}" '$1==v && $2==c {print $3}')
if [[ ! ${PORT} =~ ^[0-9]+$ ]]; then
  log "cannot read the port of cluster ${PG_VERSION}/${CLUSTER} from pg_lsclusters"
  exit 1
fi
log "cluster ${PG_VERSION}/${CLUSTER} listens on port ${PORT}"

for _ in $(seq 1 60); do
  if pg_isready -q -h "${HOST}" -p "${PORT}"; then
    break
  fi
  sleep 0.5
done
if ! pg_isready -q -h "${HOST}" -p "${PORT}"; then
  log "PostgreSQL does not answer on ${HOST}:${PORT}"
  exit 1
fi

as_postgres() { (cd / && runuser -u postgres -- psql -p "${PORT}" -v ON_ERROR_STOP=1 -qtA "$@"); }

if [[ -z $(as_postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '${ROLE}'") ]]; then
  log "creating role ${ROLE}"
  as_postgres -c "CREATE ROLE ${ROLE} LOGIN CREATEDB PASSWORD '${PASSWORD}'"
else
  as_postgres -c "ALTER ROLE ${ROLE} LOGIN CREATEDB PASSWORD '${PASSWORD}'"
fi

if [[ -z $(as_postgres -c "SELECT 1 FROM pg_database WHERE datname = '${DATABASE}'") ]]; then
  log "creating database ${DATABASE}"
  as_postgres -c "CREATE DATABASE ${DATABASE} OWNER ${ROLE}"
fi

echo "postgres://${ROLE}:${PASSWORD}@${HOST}:${PORT}/${DATABASE}"
