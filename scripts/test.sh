#!/usr/bin/env bash
# The test command: installs what it needs (venv, pinned packages, Azurite), then lint, types and the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --with-emulators
echo "==> ruff"
.venv/bin/ruff check airflow_mlpipe tests dags_examples bench
.venv/bin/ruff format --check airflow_mlpipe tests dags_examples bench
echo "==> mypy"
.venv/bin/mypy
echo "==> Docker engine for the DockerCompute tests (skipped with a reason where none can start)"
if [ "$(id -u)" = "0" ]; then
  bash scripts/docker-engine.sh || echo "    no Docker engine here: the Docker tests will be skipped"
fi
echo "==> pytest"
# Two workers (one per CPU here): most tests wait on real servers and Airflow subprocesses, not on the CPU.
exec .venv/bin/python -m pytest -n "${MLPIPE_TEST_WORKERS:-2}" --dist loadfile "$@"
