#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: uv (from PyPI) and the locked environment in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
if command -v uv >/dev/null 2>&1; then
  uv=(uv)
else
  if ! python3 -m uv --version >/dev/null 2>&1; then
    python3 -m pip --version >/dev/null 2>&1 || python3 -m ensurepip --upgrade >/dev/null 2>&1 || true
    python3 -m pip install --quiet --disable-pip-version-check "uv>=0.5" \
      || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "uv>=0.5"
  fi
  uv=(python3 -m uv)
fi
"${uv[@]}" sync --frozen --python python3.11 --quiet
