#!/usr/bin/env bash
# `make bench`: the benchmarks in bench/, on a real Kafka broker and PostgreSQL started for the run.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/with-infra.sh bench .venv/bin/python -m bench "$@"
