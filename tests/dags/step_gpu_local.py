"""A script step on LocalCompute that reports the GPU it sees (run only where there is one: test_gpu_local.py)."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import PythonScriptOperator

with DAG("step_gpu_local", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    PythonScriptOperator(
        task_id="see_gpu",
        script_name="see_gpu.py",
        source_directory=os.path.join(os.path.dirname(__file__), "gpu_steps"),
        allow_reuse=False,
        retries=0,
    )
