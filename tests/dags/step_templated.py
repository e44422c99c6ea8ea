"""A daily step whose argument, output destination and environment are templated with the day."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import Environment, OutputFileDatasetConfig, PipelineParameter, PythonScriptOperator

with DAG("step_templated", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    PythonScriptOperator(
        task_id="day",
        script_name="day.py",
        source_directory=os.path.join(os.path.dirname(__file__), "templated_steps"),
        arguments=[
            "--day",
            "{{ ds }}",
            "--out",
            OutputFileDatasetConfig(name="daily", destination=("mlpipe_default", "daily/{{ ds }}/{run-id}")),
        ],
        environment=Environment(env_vars={"DAY": "{{ ds_nodash }}"}),
    )
    PythonScriptOperator(
        task_id="choose",
        script_name="day.py",
        source_directory=os.path.join(os.path.dirname(__file__), "templated_steps"),
        arguments=[
            "--day",
            PipelineParameter(name="optimizer", default_value="adam", allowed_values=["adam", "sgd"]),
            "--out",
            OutputFileDatasetConfig(name="chosen"),
        ],
    )
