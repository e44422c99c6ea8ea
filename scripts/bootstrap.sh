#!/usr/bin/env bash
# Create .venv with the pinned dependencies, and install the npm storage emulator used by the tests.
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
stamp=.venv/.mlpipe-installed
want="$( (cat requirements/lock.txt pyproject.toml; echo compiled-bytecode) | sha256sum | cut -d' ' -f1)"

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing pinned Python packages (requirements/lock.txt)"
  .venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip --upgrade >/dev/null
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
  # --compile-bytecode: uv writes no .pyc by default, and where PYTHONDONTWRITEBYTECODE is set nothing ever does,
  # so every Airflow process compiled its ~2,000 modules again: 3.7 s of CPU per `airflow dags test`.
  .venv/bin/uv pip install --quiet --compile-bytecode -p .venv/bin/python -c requirements/lock.txt -e ".[dev]"
  echo "$want" > "$stamp"
fi

if [ "${1:-}" = "--with-emulators" ] && [ ! -x tools/azurite/node_modules/.bin/azurite-blob ]; then
  echo "==> installing Azurite (npm, tools/azurite)"
  command -v npm >/dev/null 2>&1 || { echo "npm is required for the Azure Blob emulator: install Node.js 20" >&2; exit 1; }
  npm ci --prefix tools/azurite --no-audit --no-fund --loglevel=error
fi
