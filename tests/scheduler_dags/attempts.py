"""DAGs of the attempt tests on a real scheduler (tests/attempts): retries, clears, kills and mapped steps.

``attempt_steps``: one step with two outputs (``report`` registered as ``attempts_report``), one retry at once.
The trigger conf's ``case`` is an argument, so every case has its own reuse key. ``attempt_mapped``: a step
mapped over three argument lists. ``attempt_scribble``: a consumer that writes over its mounted input.
``attempt_fixed``: an output with a fixed destination. ``attempt_transfer``: a registered copy, one retry.
"""

from __future__ import annotations

import datetime as dt
import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import DataTransferOperator, OutputFileDatasetConfig, PipelineParameter, PythonScriptOperator

STEPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps")
START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG("attempt_steps", schedule=None, start_date=START, catchup=False):
    case = PipelineParameter(name="case", default_value="plain")
    model = OutputFileDatasetConfig(name="model")
    report = OutputFileDatasetConfig(name="report").register_on_complete("attempts_report")
    PythonScriptOperator(
        task_id="train",
        script_name="two_outputs.py",
        source_directory=STEPS,
        arguments=["--case", case, "--model", model, "--report", report],
        retries=1,
        retry_delay=dt.timedelta(seconds=0),
    )

with DAG("attempt_mapped", schedule=None, start_date=START, catchup=False):
    PythonScriptOperator.partial(
        task_id="score",
        script_name="score.py",
        source_directory=STEPS,
        outputs=[OutputFileDatasetConfig(name="scores")],
    ).expand(arguments=[["--x", "1"], ["--x", "2"], ["--x", "3"]])

with DAG("attempt_scribble", schedule=None, start_date=START, catchup=False):
    produced = OutputFileDatasetConfig(name="model")
    PythonScriptOperator(
        task_id="produce",
        script_name="two_outputs.py",
        source_directory=STEPS,
        arguments=["--case", "scribble", "--model", produced, "--report", OutputFileDatasetConfig(name="report")],
    )
    PythonScriptOperator(
        task_id="consume",
        script_name="scribble.py",
        source_directory=STEPS,
        inputs=[produced.as_input("model").as_mount()],
        outputs=[OutputFileDatasetConfig(name="seen")],
    )

with DAG("attempt_fixed", schedule=None, start_date=START, catchup=False):
    PythonScriptOperator(
        task_id="train",
        script_name="two_outputs.py",
        source_directory=STEPS,
        arguments=[
            "--case",
            "fixed",
            "--model",
            OutputFileDatasetConfig(name="model", destination=("mlpipe_default", "fixed/model")),
            "--report",
            OutputFileDatasetConfig(name="report"),
        ],
    )

with DAG("attempt_transfer", schedule=None, start_date=START, catchup=False):
    DataTransferOperator(
        task_id="copy",
        source_data_reference=("mlpipe_default", "landing"),
        destination_data_reference=OutputFileDatasetConfig(name="copied"),
        register_on_complete="attempts_copied",
        retries=1,
        retry_delay=dt.timedelta(seconds=0),
    )
