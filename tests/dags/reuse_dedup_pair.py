"""Two steps, ``first`` then ``second`` (which reads ``first``'s output): the dedup test runs this DAG twice at
once and counts how often each step's script runs (see ``reuse_dedup_steps/gated_step.py``)."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import OutputFileDatasetConfig, PythonScriptOperator

STEPS = os.path.join(os.path.dirname(__file__), "reuse_dedup_steps")

with DAG("reuse_dedup_pair", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    first_out = OutputFileDatasetConfig(name="first_out")
    second_out = OutputFileDatasetConfig(name="second_out")
    PythonScriptOperator(
        task_id="first",
        script_name="gated_step.py",
        source_directory=STEPS,
        arguments=["--name", "first", "--out", first_out],
    )
    PythonScriptOperator(
        task_id="second",
        script_name="gated_step.py",
        source_directory=STEPS,
        arguments=["--name", "second", "--data", first_out.as_input(), "--out", second_out],
    )
