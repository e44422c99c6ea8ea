"""The example pipeline, run for real by Airflow, on the local default datastore, on Azurite and on moto's S3."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airflow_mlpipe import Dataset, Datastore
from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.steps.records import read_record
from airflow_mlpipe.storage import resolve
from tests.airflow_utils import EXAMPLES, airflow_dags_test, last_run_states, last_run_xcom
from tests.conftest import make_azurite_datastore, make_s3_datastore

DAG_ID = "mlpipe_example_pipeline"


def _default_env(store: Datastore) -> dict[str, str]:
    extra = {"url": store.config.url, **dict(store.config.storage_options)}
    return {"AIRFLOW_CONN_MLPIPE_DEFAULT": json.dumps({"conn_type": "mlpipe_datastore", "extra": extra})}


@pytest.fixture(params=["local", "azurite", "moto"])
def default_for_run(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    if request.param == "local":
        env = {"MLPIPE_HOME": str(tmp_path / "mlpipe")}
    elif request.param == "azurite":
        env = _default_env(make_azurite_datastore(request.getfixturevalue("azurite"), name="mlpipe_default"))
    else:
        env = _default_env(make_s3_datastore(request.getfixturevalue("moto_s3"), name="mlpipe_default"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    resolve.clear_cache()
    return env


def test_example_pipeline_end_to_end(airflow_db: Path, default_for_run: dict[str, str]) -> None:
    airflow_dags_test(DAG_ID, dags_folder=EXAMPLES, env=default_for_run)
    state, tasks = last_run_states(DAG_ID)
    assert state == "success"
    assert tasks == {"land_sample_data": "success", "data_prep": "success", "train": "success", "compare": "success"}

    store = Datastore.get_default()
    results = {t: last_run_xcom(DAG_ID, t) for t in ("data_prep", "train", "compare")}
    records = {t: read_record(r["step_run_id"]) for t, r in results.items()}
    assert all(r["status"] == "Completed" for r in records.values())

    # metrics in the run records and the XCom summary
    assert records["data_prep"]["metrics"]["rows_raw"] == 150
    assert records["data_prep"]["metrics"]["rows_train"] + records["data_prep"]["metrics"]["rows_test"] == 150
    assert records["data_prep"]["metrics"]["feature_scaling"]["feature"][0] == "sepal_length"
    assert len(records["train"]["metrics"]["loss"]) == 5  # a series: epochs 0, 50, 100, 150, 199
    assert records["train"]["metrics"]["learning_rate"] == 0.1
    assert records["compare"]["metrics"]["test_accuracy"] > 0.8
    assert results["compare"]["metrics"]["test_accuracy"] == records["compare"]["metrics"]["test_accuracy"]
    assert records["train"]["artifacts"] == ["outputs/training_summary.txt"]

    # outputs' content, committed and complete
    prepped = results["data_prep"]["outputs"]["prepped"]
    assert store.is_complete(prepped["path"])
    train_csv = store.read_text(prepped["path"] + "/train.csv").splitlines()
    test_csv = store.read_text(prepped["path"] + "/test.csv").splitlines()
    assert len(train_csv) - 1 + len(test_csv) - 1 == 150
    model = json.loads(store.read_text(results["train"]["outputs"]["model"]["path"] + "/model.json"))
    assert model["classes"] == ["setosa", "versicolor", "virginica"] and len(model["weights"]) == 4

    # the registered dataset version, with lineage back to this run
    registered = DatasetRegistry().get("iris_model")
    assert results["compare"]["registered"] == [{"name": "iris_model", "version": registered.version, "created": True}]
    assert registered.lineage["task_id"] == "compare"
    assert sorted(Dataset.get_by_name("iris_model").to_path()) == ["model.json", "report.json"]

    # the inputs as run: the pinned upstream outputs
    compare_inputs = {i["name"]: i for i in records["compare"]["inputs"]}
    assert compare_inputs["model"]["path"] == results["train"]["outputs"]["model"]["path"]
    assert compare_inputs["model"]["producer"] == "train"


def test_implicit_order_and_pipeline_parameter() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(EXAMPLES))
    dag = bag.get_dag(DAG_ID)
    assert dag is not None
    assert dag.get_task("train").upstream_task_ids == {"data_prep"}
    assert dag.get_task("compare").upstream_task_ids == {"data_prep", "train"}
    assert dag.params["learning_rate"] == 0.1
    schema = dag.params.get_param("learning_rate").schema
    assert schema["type"] == "number"  # one type: the trigger form shows a number field


def test_trigger_conf_changes_the_parameter(airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"MLPIPE_HOME": str(tmp_path / "mlpipe")}
    monkeypatch.setenv("MLPIPE_HOME", env["MLPIPE_HOME"])
    resolve.clear_cache()
    airflow_dags_test(DAG_ID, dags_folder=EXAMPLES, conf={"learning_rate": 0.5}, env=env)
    record = read_record(last_run_xcom(DAG_ID, "train")["step_run_id"])
    assert record["metrics"]["learning_rate"] == 0.5
    assert record["parameters"] == {"learning_rate": 0.5}
    assert record["arguments"][-1] == {"kind": "param", "name": "learning_rate", "value": 0.5}


def test_failing_script_commits_and_registers_nothing(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"MLPIPE_HOME": str(tmp_path / "mlpipe")}
    monkeypatch.setenv("MLPIPE_HOME", env["MLPIPE_HOME"])
    resolve.clear_cache()
    proc = airflow_dags_test("step_failing", env=env, check=False)
    _, tasks = last_run_states("step_failing")
    assert tasks["fails"] == "failed", proc.stdout[-3000:]
    assert "about to fail" in proc.stdout + proc.stderr
    assert "script exited with code 3" in proc.stdout + proc.stderr
    assert DatasetRegistry().versions("never_registered") == []
    store = Datastore.get_default()
    runs = [p for p in store.list("_mlpipe/runs") if "step_failing" in p]
    record = read_record(runs[-1].rsplit("/", 1)[-1])
    assert record["status"] == "Failed" and record["exit_code"] == 3
    assert record["metrics"] == {"progress": 0.5}
    assert "about to fail" in record["log_tail"]
    # no output folder anywhere is complete, and the half-written files are gone with the staging folder
    assert not [p for p in store.list("", recursive=True) if p.endswith("_MLPIPE_COMPLETE")]
    assert not [p for p in store.list("", recursive=True) if p.endswith("half.csv")]
    assert os.path.isdir(tmp_path / "mlpipe" / "datastore")


def test_metrics_that_are_not_finite_numbers_pass_as_null(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A diverged loss (NaN, infinities) is a result, not an error: the step succeeds, its record keeps the
    values, XCom and ``mlpipe runs show --json`` (strict JSON) carry null, and the rerun reuses it. Before, the
    XCom push failed the task after its outputs were registered, and every rerun (a reuse hit) failed the same."""
    from tests.reuse.reuse_helpers import mlpipe_in_process

    env = {"MLPIPE_HOME": str(tmp_path / "mlpipe")}
    monkeypatch.setenv("MLPIPE_HOME", env["MLPIPE_HOME"])
    resolve.clear_cache()
    for _ in range(2):
        proc = airflow_dags_test("step_nonfinite_metrics", env=env, check=False)
        _, tasks = last_run_states("step_nonfinite_metrics")
        assert tasks["diverged"] == "success", (proc.stdout + proc.stderr)[-4000:]
        assert "Traceback" not in proc.stdout + proc.stderr
        pushed = last_run_xcom("step_nonfinite_metrics", "diverged")
        assert pushed["metrics"] == {
            "loss": None, "grad_norm": None, "floor": None, "losses": None, "accuracy": 0.75
        }, pushed["metrics"]  # fmt: skip
    assert pushed["reused"] is True
    [version] = DatasetRegistry().versions("diverged_model")
    assert version == 1
    record = read_record(pushed["reused_from"] or pushed["step_run_id"])
    loss = record["metrics"]["loss"]
    assert loss != loss and record["metrics"]["grad_norm"] == float("inf")  # kept as logged
    code, shown = mlpipe_in_process("runs", "show", record["step_run_id"], "--json")
    assert code == 0, shown
    shown_metrics = json.loads(shown, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))["metrics"]
    assert shown_metrics["loss"] is None and shown_metrics["grad_norm"] is None and shown_metrics["accuracy"] == 0.75
