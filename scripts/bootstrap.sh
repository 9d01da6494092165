#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: uv (from PyPI) and the locked environment.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check "uv>=0.5" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "uv>=0.5"
fi
uv sync --frozen --python python3.11 --quiet
