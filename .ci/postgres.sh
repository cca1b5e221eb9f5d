#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the label-store tests and print the URL to export.
#
# Idempotent, run as root: installs Debian's postgresql with apt-get if missing, creates a cluster in
# $PIXLABEL_PG_DIR (default /tmp/pixlabel-pg) owned by the `postgres` user, starts it listening on 127.0.0.1
# only (never on a public interface) on the first free port from $PIXLABEL_PG_PORT (default 55432), and
# creates the role/database pixlabel/pixlabel. A second run reuses the running server.
#
#   eval "$(sudo .ci/postgres.sh)"        # then: .venv/bin/pytest tests/test_store*.py -m postgres
#   .ci/postgres.sh stop                   # stop the server (the data directory is kept)
set -euo pipefail

PG_DIR=${PIXLABEL_PG_DIR:-/tmp/pixlabel-pg}
PG_DATA=$PG_DIR/data
PORT=${PIXLABEL_PG_PORT:-55432}
DB_USER=pixlabel
DB_PASS=pixlabel
DB_NAME=pixlabel

log() { echo "postgres.sh: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  log "run me as root (I install packages and start the server as the postgres user)"
  exit 1
fi

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [[ -z $(pg_bin) ]]; then
  log "installing postgresql with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
BIN=$(pg_bin)
as_pg() { runuser -u postgres -- "$@"; }

if [[ ${1:-} == stop ]]; then
  if [[ -f $PG_DATA/postmaster.pid ]]; then as_pg "$BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >&2; fi
  exit 0
fi

mkdir -p "$PG_DIR"
chown postgres: "$PG_DIR"
if [[ ! -f $PG_DATA/PG_VERSION ]]; then
  log "creating a cluster in $PG_DATA"
  # Unix-socket logins as postgres are trusted (this script only); TCP logins need a password.
  as_pg "$BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >&2
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if as_pg "$BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
  PORT=$(sed -n 4p "$PG_DATA/postmaster.pid")   # line 4 of postmaster.pid is the port it listens on
  log "already running on 127.0.0.1:$PORT"
else
  while port_in_use "$PORT"; do PORT=$((PORT + 1)); done
  log "starting on 127.0.0.1:$PORT"
  as_pg "$BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PG_DIR" start >&2
fi

psql_admin() { as_pg "$BIN/psql" -h "$PG_DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [[ $(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'") != 1 ]]; then
  psql_admin -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASS'"
fi
if [[ $(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") != 1 ]]; then
  psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
fi

echo "export PIXLABEL_TEST_PG_URL=postgresql://$DB_USER:$DB_PASS@127.0.0.1:$PORT/$DB_NAME"
