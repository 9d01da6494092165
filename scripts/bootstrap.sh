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
# The interpreter: $ITSM_PYTHON if set, else the distribution's CPython 3.11 if it has the standard library the
# services use, else python3.11 on PATH. Debian builds CPython with profile-guided and link-time optimization, as
# the python:3.11-slim image the Dockerfile ships on is built; a version manager's own build often is not (pyenv's
# by default): the services ran faster on Debian's (README, "The two commands"). uv makes the environment again
# when the interpreter changes.
python="${ITSM_PYTHON:-}"
if [ -z "$python" ]; then
  python=python3.11
  if /usr/bin/python3.11 -c 'import ssl, sqlite3, ctypes, zoneinfo, lzma, bz2, uuid' >/dev/null 2>&1; then
    python=/usr/bin/python3.11
  fi
fi
"${uv[@]}" sync --frozen --python "$python" --quiet
