from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import OutputFileDatasetConfig, PythonScriptOperator

with DAG("step_nonfinite_metrics", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    PythonScriptOperator(
        task_id="diverged",
        script_name="nonfinite_metrics.py",
        source_directory=os.path.join(os.path.dirname(__file__), "step_scripts"),
        arguments=["--out", OutputFileDatasetConfig("model").register_on_complete("diverged_model")],
        retries=0,
    )
