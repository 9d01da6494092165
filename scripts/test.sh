#!/usr/bin/env bash
# `make test`: the lint check, then every test on a real Kafka broker and a real PostgreSQL server
# started for the run. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/ruff check --quiet .
exec scripts/with-infra.sh test .venv/bin/python -m pytest "$@"
