from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import OutputFileDatasetConfig, PythonScriptOperator

with DAG("step_failing", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    PythonScriptOperator(
        task_id="fails",
        script_name="write_then_fail.py",
        source_directory=os.path.join(os.path.dirname(__file__), "step_scripts"),
        arguments=["--out", OutputFileDatasetConfig("half").register_on_complete("never_registered")],
        retries=0,
    )
