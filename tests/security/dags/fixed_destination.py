"""``security_fixed``: two steps whose outputs share the fixed destination ``models/latest`` (no ``{run-id}``),
each registered as ``latest_model``; the second must never overwrite the bytes of the first's registered version."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import Datastore, OutputFileDatasetConfig, PythonScriptOperator

STEPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps")


def _step(task_id: str) -> PythonScriptOperator:
    out = OutputFileDatasetConfig(name="model", destination=(Datastore.get_default(), "models/latest"))
    return PythonScriptOperator(
        task_id=task_id,
        script_name="write_model.py",
        source_directory=STEPS,
        arguments=["--out", out.register_on_complete("latest_model"), "--by", task_id],
    )


with DAG("security_fixed", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    _step("first") >> _step("second")
