#!/usr/bin/env bash
# Start or stop the local broker and database together.
#
#   stack.sh up       start Kafka and PostgreSQL, write .local/stack.env
#   stack.sh down     stop both
#   stack.sh status   print the state of each and the connection settings
#
# .local/stack.env contains LUNA_KAFKA_BOOTSTRAP and LUNA_DATABASE_URL; the
# luna-triggers command reads it when it exists.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LOCAL_DIR="${LUNA_LOCAL_DIR:-$ROOT/.local}"

up() {
  mkdir -p "$LOCAL_DIR"
  "$HERE/postgres.sh" start
  "$HERE/kafka.sh" start
  {
    echo "LUNA_KAFKA_BOOTSTRAP=$("$HERE/kafka.sh" bootstrap)"
    echo "LUNA_DATABASE_URL=$("$HERE/postgres.sh" dsn)"
  } >"$LOCAL_DIR/stack.env"
  cat "$LOCAL_DIR/stack.env"
}

down() {
  "$HERE/kafka.sh" stop
  "$HERE/postgres.sh" stop
}

status() {
  echo "kafka: $("$HERE/kafka.sh" status)"
  echo "postgres: $("$HERE/postgres.sh" status)"
  if [[ -f "$LOCAL_DIR/stack.env" ]]; then cat "$LOCAL_DIR/stack.env"; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  install) "$HERE/postgres.sh" install; "$HERE/kafka.sh" install ;;
  *) echo "usage: stack.sh up|down|status|install" >&2; exit 2 ;;
esac
