"""prep → train → report, plus an audit step that never reuses: the reuse tests' pipeline.

Each step has its own source folder under ``MLPIPE_REUSE_SOURCES`` (a copy of ``reuse_steps`` the test may edit),
so an edit re-runs only the step it touches and what reads its outputs. Each script appends its name to the file
``MLPIPE_REUSE_COUNTER``, outside any datastore: the tests count executions there.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import Dataset, OutputFileDatasetConfig, PipelineParameter, PythonScriptOperator

SOURCES = os.environ.get("MLPIPE_REUSE_SOURCES", os.path.join(os.path.dirname(__file__), "reuse_steps"))

with DAG("reuse_chain", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    raw = Dataset.File.from_files(path=("mlpipe_default", "raw/*.csv"))
    learning_rate = PipelineParameter(name="learning_rate", default_value=0.1)
    prepped = OutputFileDatasetConfig(name="prepped")
    model = OutputFileDatasetConfig(name="model")
    report = OutputFileDatasetConfig(name="report").register_on_complete("reuse_chain_report")

    PythonScriptOperator(
        task_id="prep",
        script_name="prep.py",
        source_directory=os.path.join(SOURCES, "prep"),
        arguments=["--raw", raw.as_named_input("raw").as_download(), "--out", prepped],
    )
    PythonScriptOperator(
        task_id="train",
        script_name="train.py",
        source_directory=os.path.join(SOURCES, "train"),
        arguments=["--data", prepped.as_input(), "--lr", learning_rate, "--out", model],
        hash_paths=["../shared"],
    )
    PythonScriptOperator(
        task_id="report",
        script_name="report.py",
        source_directory=os.path.join(SOURCES, "report"),
        arguments=["--model", model.as_input(), "--data", prepped.as_input(), "--out", report],
    )
    PythonScriptOperator(
        task_id="audit",
        script_name="audit.py",
        source_directory=os.path.join(SOURCES, "audit"),
        allow_reuse=False,
        retries=0,
    )
