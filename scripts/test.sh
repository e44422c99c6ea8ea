#!/usr/bin/env bash
# The test command: installs what it needs (venv, pinned packages, Azurite), then lint, types and the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --with-emulators
# Our own modules' bytecode is cached too (the packages' is compiled at install): the suite starts hundreds of
# Python processes, and each compiled every module it imported afresh where PYTHONDONTWRITEBYTECODE is set.
unset PYTHONDONTWRITEBYTECODE
echo "==> ruff"
.venv/bin/ruff check airflow_mlpipe tests dags_examples bench
.venv/bin/ruff format --check airflow_mlpipe tests dags_examples bench
echo "==> mypy"
.venv/bin/mypy
echo "==> Docker engine for the DockerCompute tests"
if [ "$(id -u)" = "0" ]; then
  # As root the engine can always be installed and started: failing to is an error, never a silent skip.
  bash scripts/docker-engine.sh
  export MLPIPE_REQUIRE_DOCKER=1
else
  echo "    not root: the Docker tests are skipped unless MLPIPE_TEST_DOCKER_HOST names a running engine"
fi
echo "==> Chromium for the browser tests of the Airflow UI"
if [ "$(id -u)" = "0" ]; then
  MLPIPE_CHROMIUM="$(bash scripts/chromium.sh)"
else
  MLPIPE_CHROMIUM="$(bash scripts/chromium.sh || true)"  # the browser tests fail and say how to install it
fi
export MLPIPE_CHROMIUM
echo "==> PostgreSQL and Redis for the scheduler tests (metadata DB, Celery broker)"
bash scripts/postgres.sh >/dev/null
bash scripts/redis.sh >/dev/null
echo "==> pytest"
# Three workers on two CPUs: most tests wait on real servers and Airflow subprocesses, not on the CPU (with two
# workers the suite kept 1.4 CPUs busy).
exec .venv/bin/python -m pytest -n "${MLPIPE_TEST_WORKERS:-3}" --dist loadfile "$@"
