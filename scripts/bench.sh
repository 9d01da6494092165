#!/usr/bin/env bash
# `make bench`: the benchmarks in bench/, on a real Kafka broker and PostgreSQL started for the run
# (on their own ports, so that a test run can go on beside it).
set -euo pipefail
cd "$(dirname "$0")/.."
export ITSM_TEST_KAFKA_PORT="${ITSM_TEST_KAFKA_PORT:-29092}" ITSM_TEST_KAFKA_CONTROLLER_PORT="${ITSM_TEST_KAFKA_CONTROLLER_PORT:-29093}"
export ITSM_TEST_PG_PORT="${ITSM_TEST_PG_PORT:-15443}"
exec scripts/with-infra.sh bench .venv/bin/python -m bench "$@"
