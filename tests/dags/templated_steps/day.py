"""Writes what the step saw of its day: the rendered argument, the Airflow context and the MLPIPE_* variables."""

import argparse
import json
import os

from airflow_mlpipe import Run

parser = argparse.ArgumentParser()
parser.add_argument("--day", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()
run = Run.get_context()
seen = {
    "day": args.day,
    "env_day": os.environ.get("DAY"),
    "logical_date": run.logical_date.isoformat() if run.logical_date else None,
    "data_interval_end": run.data_interval_end.isoformat() if run.data_interval_end else None,
    "dag_id": run.dag_id,
    "run_id": run.run_id,
    "task_id": run.task_id,
    "try_number": run.try_number,
    "params": run.params,
    "MLPIPE_LOGICAL_DATE": os.environ.get("MLPIPE_LOGICAL_DATE"),
    "MLPIPE_DAG_ID": os.environ.get("MLPIPE_DAG_ID"),
}
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "seen.json"), "w") as fh:
    json.dump(seen, fh)
