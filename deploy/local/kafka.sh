#!/usr/bin/env bash
# Run a single-node Apache Kafka broker (KRaft, combined broker and
# controller) on loopback from jars resolved from Maven Central.
#
#   kafka.sh install        resolve the broker's jars (once per version)
#   kafka.sh start          format the log folder if new, start, wait for ready
#   kafka.sh stop           stop the broker started here (by its pid file)
#   kafka.sh status         print "running" or "stopped"
#
# State lives in $LUNA_LOCAL_DIR/kafka (default .local/kafka, ignored by git).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# The broker version is this one variable; 3.9.x also works with the jars
# swapped for reload4j (see the pom file).
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
LOCAL_DIR="${LUNA_LOCAL_DIR:-$ROOT/.local}"
STATE="$LOCAL_DIR/kafka"
LIBS="$LOCAL_DIR/kafka-libs/$KAFKA_VERSION"
PID_FILE="$STATE/broker.pid"
START_TIMEOUT_S="${KAFKA_START_TIMEOUT_S:-90}"

source "$HERE/ports.sh"

install() {
  if [[ -f "$LIBS/.complete" ]]; then
    return
  fi
  command -v mvn >/dev/null || { echo "kafka.sh: mvn not found; install Maven (Debian package maven)" >&2; exit 1; }
  mkdir -p "$LIBS"
  echo "kafka.sh: resolving Kafka $KAFKA_VERSION jars" >&2
  mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -Dkafka.version="$KAFKA_VERSION" \
    -DoutputDirectory="$LIBS" >&2
  touch "$LIBS/.complete"
}

is_running() {
  [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

write_config() {
  local port="$1" controller_port="$2"
  mkdir -p "$STATE/data"
  cat >"$STATE/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$STATE/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
PROPS
  cat >"$STATE/log4j2.properties" <<PROPS
status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $STATE/broker.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
PROPS
}

java_cmd() {
  java -Xms256m -Xmx768m -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$STATE/log4j2.properties" \
    -cp "$LIBS/*" "$@"
}

start() {
  install
  if is_running; then
    echo "kafka.sh: broker already running (pid $(cat "$PID_FILE"))" >&2
    return
  fi
  mkdir -p "$STATE"
  local port controller_port
  if [[ -f "$STATE/ports" ]]; then
    read -r port controller_port <"$STATE/ports"
  else
    port="$(free_port)"
    controller_port="$(free_port)"
    while [[ "$controller_port" == "$port" ]]; do controller_port="$(free_port)"; done
    echo "$port $controller_port" >"$STATE/ports"
  fi
  write_config "$port" "$controller_port"
  if [[ ! -f "$STATE/cluster-id" ]]; then
    # A cluster id is 16 random bytes in URL-safe base64 without padding.
    head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' >"$STATE/cluster-id"
  fi
  java_cmd kafka.tools.StorageTool format -t "$(cat "$STATE/cluster-id")" \
    -c "$STATE/server.properties" --ignore-formatted >"$STATE/format.log" 2>&1
  : >"$STATE/broker.log"
  nohup java -Xms256m -Xmx768m -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$STATE/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$STATE/server.properties" \
    >"$STATE/stdout.log" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local waited=0
  until grep -q "Kafka Server started" "$STATE/broker.log" 2>/dev/null; do
    if ! is_running; then
      echo "kafka.sh: broker exited during start-up; see $STATE/broker.log and $STATE/stdout.log" >&2
      tail -20 "$STATE/stdout.log" >&2 || true
      rm -f "$PID_FILE"
      exit 1
    fi
    if ((waited >= START_TIMEOUT_S * 10)); then
      echo "kafka.sh: broker not ready after ${START_TIMEOUT_S}s; see $STATE/broker.log" >&2
      stop
      exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  echo "kafka.sh: Kafka $KAFKA_VERSION ready on 127.0.0.1:$port" >&2
}

stop() {
  if ! is_running; then
    rm -f "$PID_FILE"
    return
  fi
  local pid
  pid="$(cat "$PID_FILE")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "kafka.sh: broker did not stop in 30s; sending SIGKILL to pid $pid" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
}

bootstrap() {
  read -r port _ <"$STATE/ports"
  echo "127.0.0.1:$port"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) if is_running; then echo running; else echo stopped; fi ;;
  bootstrap) bootstrap ;;
  *) echo "usage: kafka.sh install|start|stop|status|bootstrap" >&2; exit 2 ;;
esac
