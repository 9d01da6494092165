#!/usr/bin/env bash
# `make test`: every test, on a real Kafka broker and a real PostgreSQL server started for the run.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/with-infra.sh test .venv/bin/python -m pytest "$@"
