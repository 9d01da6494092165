#!/usr/bin/env bash
# `make up` / `make down` / `make status`: Kafka, PostgreSQL and the five services as separate processes.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m itsm_standalone.stack "$@"
