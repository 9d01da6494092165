#!/usr/bin/env bash
# Runs a command against a fresh real Kafka broker and PostgreSQL server that it starts and stops.
#   scripts/with-infra.sh NAME COMMAND...      (NAME separates run directories: test, bench, ...)
# Exports ITSM_TEST_DATABASE_URL (server URL) and ITSM_TEST_KAFKA (bootstrap servers) to COMMAND.
# Ports: ITSM_TEST_KAFKA_PORT (19092), ITSM_TEST_KAFKA_CONTROLLER_PORT (19093), ITSM_TEST_PG_PORT (15433).
set -euo pipefail
cd "$(dirname "$0")/.."
name="$1"; shift
scripts/bootstrap.sh
export ITSM_RUN_DIR="${ITSM_RUN_DIR:-$PWD/.run/$name}"
export KAFKA_PORT="${ITSM_TEST_KAFKA_PORT:-19092}" KAFKA_CONTROLLER_PORT="${ITSM_TEST_KAFKA_CONTROLLER_PORT:-19093}"
pg_port="${ITSM_TEST_PG_PORT:-15433}"
cleanup() {
  # service processes a killed test run may have left behind (recorded by itsm_standalone.stack)
  for pid_file in "$ITSM_RUN_DIR"/pids/*; do
    [ -e "$pid_file" ] || continue
    kill -TERM -- "-$(basename "$pid_file")" 2>/dev/null || true
    rm -f "$pid_file"
  done
  deploy/local/kafka.sh stop || true
  .venv/bin/python -m itsm_runtime.pg stop --data "$ITSM_RUN_DIR/pg" || true
}
trap cleanup EXIT
cleanup
rm -rf "$ITSM_RUN_DIR"
mkdir -p "$ITSM_RUN_DIR"
.venv/bin/python -m itsm_runtime.pg start --data "$ITSM_RUN_DIR/pg" --port "$pg_port" >/dev/null
deploy/local/kafka.sh start
export ITSM_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/postgres"
export ITSM_TEST_KAFKA="127.0.0.1:$KAFKA_PORT"
"$@"
