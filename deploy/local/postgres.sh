#!/usr/bin/env bash
# Run a project-owned PostgreSQL cluster on loopback from Debian's package.
#
#   postgres.sh install     install Debian's postgresql package if missing
#   postgres.sh start       initdb if new, start, create the database
#   postgres.sh stop        stop the cluster started here
#   postgres.sh status      print "running" or "stopped"
#   postgres.sh dsn         print the connection string
#
# initdb and postgres refuse to run as root, so when this script runs as root
# the cluster runs as Debian's "postgres" system user and owns its folder.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LOCAL_DIR="${LUNA_LOCAL_DIR:-$ROOT/.local}"
STATE="$LOCAL_DIR/postgres"
DATA="$STATE/data"
DB_NAME="luna"

source "$HERE/ports.sh"

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [[ -n "$dir" ]] && echo "$dir"
}

install() {
  if [[ -n "$(pg_bin)" ]]; then
    return
  fi
  if [[ "$(id -u)" != 0 ]]; then
    echo "postgres.sh: PostgreSQL is not installed; run: sudo apt-get install -y postgresql" >&2
    exit 1
  fi
  echo "postgres.sh: installing Debian's postgresql package" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  # The package may start a system cluster on 5432; this project does not use it.
}

as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

is_running() {
  [[ -f "$DATA/postmaster.pid" ]] && kill -0 "$(head -1 "$DATA/postmaster.pid")" 2>/dev/null
}

start() {
  install
  local bin
  bin="$(pg_bin)"
  if is_running; then
    echo "postgres.sh: already running" >&2
    return
  fi
  mkdir -p "$STATE"
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    mkdir -p "$DATA"
    if [[ "$(id -u)" == 0 ]]; then chown -R postgres:postgres "$STATE"; fi
    as_owner "$bin/initdb" -D "$DATA" -U luna --auth=trust -E UTF8 --locale=C.UTF-8 >"$STATE/initdb.log"
  fi
  if [[ ! -f "$STATE/port" ]]; then
    free_port >"$STATE/port"
  fi
  local port
  port="$(cat "$STATE/port")"
  if [[ "$(id -u)" == 0 ]]; then chown -R postgres:postgres "$STATE"; fi
  as_owner "$bin/pg_ctl" -D "$DATA" -l "$STATE/server.log" -w -t 60 start \
    -o "-h 127.0.0.1 -p $port -k $DATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null
  if ! as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U luna -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U luna "$DB_NAME"
  fi
  echo "postgres.sh: PostgreSQL ready on 127.0.0.1:$port" >&2
}

stop() {
  if ! is_running; then
    return
  fi
  as_owner "$(pg_bin)/pg_ctl" -D "$DATA" -w -t 60 -m fast stop >/dev/null
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) if is_running; then echo running; else echo stopped; fi ;;
  dsn) echo "postgresql://luna@127.0.0.1:$(cat "$STATE/port")/$DB_NAME" ;;
  *) echo "usage: postgres.sh install|start|stop|status|dsn" >&2; exit 2 ;;
esac
