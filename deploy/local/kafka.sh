#!/usr/bin/env bash
# Apache Kafka (single-node KRaft) without Docker: jars from Maven Central, started with kafka.Kafka.
#   kafka.sh fetch | start | stop | status
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_HEAP (512m),
#              ITSM_RUN_DIR (./.run), ITSM_CACHE_DIR (~/.cache/itsm).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
heap="${KAFKA_HEAP:-512m}"
run_dir="${ITSM_RUN_DIR:-$root/.run}/kafka-$port"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")"
libs="${ITSM_CACHE_DIR:-$HOME/.cache/itsm}/kafka-$version/libs"

fetch() {
  if [ -f "$libs/.complete" ]; then return; fi
  echo "fetching Kafka $version jars from Maven Central into $libs"
  rm -rf "$libs"; mkdir -p "$libs"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$libs" -DincludeScope=runtime
  touch "$libs/.complete"
}

java_opts=(-Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -Djava.awt.headless=true
           -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -cp "$libs/*")

ready() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

# A port still held by a closing connection (or a client's ephemeral port) frees itself in seconds.
wait_port_free() {
  for _ in $(seq 1 60); do
    if ! ss -Htan "( sport = :$1 )" 2>/dev/null | grep -qv TIME-WAIT; then return; fi
    sleep 0.5
  done
  echo "port $1 is still in use" >&2; ss -tanp "( sport = :$1 )" >&2 || true; exit 1
}

start() {
  fetch
  if [ -f "$run_dir/pid" ] && kill -0 "$(cat "$run_dir/pid")" 2>/dev/null; then
    echo "kafka already running on 127.0.0.1:$port"; return
  fi
  mkdir -p "$run_dir"
  wait_port_free "$port"; wait_port_free "$controller_port"
  sed -e "s/127.0.0.1:9092/127.0.0.1:$port/g" -e "s/127.0.0.1:9093/127.0.0.1:$controller_port/g" \
      "$here/kafka/server.properties" > "$run_dir/server.properties"
  echo "log.dirs=$run_dir/data" >> "$run_dir/server.properties"
  if [ ! -f "$run_dir/data/meta.properties" ]; then
    java "${java_opts[@]}" kafka.tools.StorageTool format --standalone \
      -t "$(java "${java_opts[@]}" kafka.tools.StorageTool random-uuid)" \
      -c "$run_dir/server.properties" > "$run_dir/format.log" 2>&1
  fi
  nohup java "${java_opts[@]}" kafka.Kafka "$run_dir/server.properties" < /dev/null > "$run_dir/kafka.log" 2>&1 &
  echo $! > "$run_dir/pid"
  for _ in $(seq 1 120); do
    if ready; then echo "kafka ready on 127.0.0.1:$port"; return; fi
    if ! kill -0 "$(cat "$run_dir/pid")" 2>/dev/null; then
      echo "kafka exited; see $run_dir/kafka.log" >&2; tail -20 "$run_dir/kafka.log" >&2; exit 1
    fi
    sleep 0.5
  done
  echo "kafka did not become ready; see $run_dir/kafka.log" >&2; exit 1
}

stop() {
  [ -f "$run_dir/pid" ] || return 0
  pid="$(cat "$run_dir/pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$run_dir/pid"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  clean) stop; rm -rf "$run_dir" ;;
  status) if ready; then echo up; else echo down; exit 1; fi ;;
  *) echo "usage: $0 fetch|start|stop|clean|status" >&2; exit 2 ;;
esac
