#!/usr/bin/env bash
# `make test`: starts a real Kafka broker and a real PostgreSQL server on test ports, runs every
# test against them, and stops them again. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export ITSM_RUN_DIR="$PWD/.run/test"
export KAFKA_PORT="${ITSM_TEST_KAFKA_PORT:-39092}" KAFKA_CONTROLLER_PORT="${ITSM_TEST_KAFKA_CONTROLLER_PORT:-39093}"
pg_port="${ITSM_TEST_PG_PORT:-55433}"
cleanup() {
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
.venv/bin/python -m pytest "$@"
