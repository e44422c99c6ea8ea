"""Airflow-native runs on a real scheduler (tests/attempts/native_cases.py).

``native_daily``: a daily step whose argument and output destination are templated with the day (backfills
compute each day once, and reuse on a repeat). ``native_dedup``: a slow step whose identical runs wait for one
another. ``native_form``: typed parameters in the trigger form.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import OutputFileDatasetConfig, PipelineParameter, PythonScriptOperator

STEPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps")
START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG("native_daily", schedule="@daily", start_date=START, catchup=False, max_active_runs=3):
    PythonScriptOperator(
        task_id="daily",
        script_name="daily.py",
        source_directory=STEPS,
        arguments=[
            "--day",
            "{{ ds }}",
            "--out",
            OutputFileDatasetConfig(name="day", destination=("mlpipe_default", "days/{{ ds }}/{run-id}")),
        ],
    )

with DAG("native_dedup", schedule=None, start_date=START, catchup=False):
    PythonScriptOperator(
        task_id="slow",
        script_name="daily.py",
        source_directory=STEPS,
        arguments=[
            "--day",
            PipelineParameter(name="tag", default_value="same"),
            "--sleep",
            "8",
            "--out",
            OutputFileDatasetConfig(name="result"),
        ],
        deferrable=True,  # the identical run waits in the triggerer (the test watches for its deferral)
    )

with DAG("native_form", schedule=None, start_date=START, catchup=False):
    # Only its trigger form is looked at (tests/attempts/native_cases.py): typed parameters.
    PythonScriptOperator(
        task_id="typed",
        script_name="daily.py",
        source_directory=STEPS,
        arguments=[
            "--day",
            PipelineParameter(name="mode", default_value="fast", allowed_values=["fast", "full"]),
            "--sleep",
            PipelineParameter(name="pause", default_value=0.5, description="seconds to wait"),
            "--epochs",
            PipelineParameter(name="epochs", default_value=3),
            "--out",
            OutputFileDatasetConfig(name="result"),
        ],
    )
