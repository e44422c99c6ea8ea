#!/usr/bin/env bash
# The demo command: install what is needed, then run the example pipeline end to end on the embedded default
# (SQLite metadata DB, local datastore, local compute) and say where its outputs, metrics and dataset are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/.mlpipe-demo/airflow}"
export MLPIPE_HOME="${MLPIPE_HOME:-$AIRFLOW_HOME/mlpipe}"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags_examples"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
mkdir -p "$AIRFLOW_HOME"
log="$AIRFLOW_HOME/demo-run.log"

echo "==> Airflow metadata DB (SQLite) in $AIRFLOW_HOME"
.venv/bin/airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1

echo "==> running DAG mlpipe_example_pipeline (data_prep -> train -> compare); full log: $log"
if ! .venv/bin/airflow dags test mlpipe_example_pipeline >"$log" 2>&1; then
  tail -n 60 "$log"
  echo "The example pipeline failed; the full log is $log" >&2
  exit 1
fi
grep -o '\[mlpipe\].*' "$log" | sed 's/ \[airflow.task.*//' || true

echo
echo "==> step runs (mlpipe runs list --dag mlpipe_example_pipeline)"
.venv/bin/mlpipe runs list --dag mlpipe_example_pipeline --limit 3
echo
echo "==> the registered model (mlpipe datasets show iris_model)"
.venv/bin/mlpipe datasets show iris_model
echo
echo "Datastore (outputs, run records, registry): $MLPIPE_HOME/datastore"
echo "Try: AIRFLOW_HOME=$AIRFLOW_HOME MLPIPE_HOME=$MLPIPE_HOME .venv/bin/mlpipe runs show <STEP_RUN_ID>"
