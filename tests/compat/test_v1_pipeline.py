"""The v1-style example (dags_examples/ml_pipeline_v1.py) end to end in-process (``dag.test()``), and a second run
that reuses every step."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
from airflow import settings

from airflow_mlpipe.compat.core import Model, PipelineRun
from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.steps.records import read_record
from airflow_mlpipe.storage.datastore import Datastore
from tests.airflow_utils import EXAMPLES, last_run_states, last_run_xcom

TASKS = ("get_data", "data_prep", "train", "compare_models")


def _dag() -> Any:
    return runpy.run_path(str(EXAMPLES / "ml_pipeline_v1.py"))["pipeline_run"].dag


@pytest.mark.usefixtures("airflow_db")
def test_v1_example_runs_then_reuses_every_step(local_default: Datastore, monkeypatch: pytest.MonkeyPatch) -> None:
    # dag.test() serialises the DAG from the DAGs folder: one that holds only this example
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(Path(__file__).parent / "dags"))
    dag = _dag()
    assert {t.task_id: t.task_display_name for t in dag.tasks}["compare_models"] == "Compare models"

    assert dag.test().state == "success"
    first = {t: last_run_xcom(dag.dag_id, t) for t in TASKS}
    assert all(r["reused"] is False for r in first.values())
    records = {t: read_record(r["step_run_id"]) for t, r in first.items()}
    assert records["get_data"]["metrics"]["rows"] == 150
    assert records["data_prep"]["metrics"]["rows_train"] + records["data_prep"]["metrics"]["rows_test"] == 150
    assert records["compare_models"]["metrics"]["best_accuracy"] > 0.8
    assert records["train"]["parameters"] == {"learning_rate": 1.0}
    parent = PipelineRun(dag.dag_id, records["train"]["run_id"], "")
    assert parent.get_metrics()["rows_total"] == 150
    assert DatasetRegistry().get("iris_best_model").lineage["task_id"] == "compare_models"
    assert Model.get_model_path("iris_centroids").endswith("centroids.json")

    assert _dag().test().state == "success"
    _, states = last_run_states(dag.dag_id)
    assert states == dict.fromkeys(TASKS, "success")
    second = {t: last_run_xcom(dag.dag_id, t) for t in TASKS}
    assert {t: r["reused_from"] for t, r in second.items()} == {t: r["step_run_id"] for t, r in first.items()}
