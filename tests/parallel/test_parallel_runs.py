"""ParallelRunStep in real Airflow runs (``airflow dags test`` runs mapped tasks too): the example end to end, the
incremental rerun, and bad inputs that must leave nothing committed or registered (a failing mini-batch, failures
over the threshold, an empty input). Each way an entry script goes wrong is tested on the driver itself
(test_driver.py): they end in one of these two failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe import Datastore
from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.steps.records import iter_records, read_record
from airflow_mlpipe.storage import resolve
from tests.airflow_utils import EXAMPLES, TEST_DAGS, airflow_dags_test, last_run_states, last_run_xcom
from tests.reuse.reuse_helpers import mlpipe_in_process

EXAMPLE = "mlpipe_example_batch_scoring"
FAULTS = "parallel_faults"


@pytest.fixture
def home(airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"MLPIPE_HOME": str(tmp_path / "mlpipe"), "MLPIPE_EXAMPLE_SCORING_FILES": "50"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    resolve.clear_cache()
    return env


def _mapped_results(dag_id: str, task_id: str) -> list[dict[str, Any]]:
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        assert run is not None
        rows = (
            session.query(XComModel)
            .filter(XComModel.dag_id == dag_id, XComModel.run_id == run.run_id, XComModel.task_id == task_id)
            .filter(XComModel.key == "return_value")
            .order_by(XComModel.map_index)
            .all()
        )
        return [XComModel.deserialize_value(r) for r in rows]


def _batches(dag_id: str) -> list[dict[str, Any]]:
    """Every mini-batch's result in the last DAG run, in mini-batch order: those the planning task reused and
    those the node task instances computed."""
    planned = last_run_xcom(dag_id, "score.plan", key="mini_batches")
    results = [p["result"] for p in planned if p["result"] is not None]
    for node in _mapped_results(dag_id, "score.mini_batch"):
        results += node
    assert sorted(r["index"] for r in results) == list(range(len(planned))), results
    return sorted(results, key=lambda r: r["index"])


def _scores(result: dict[str, Any]) -> list[str]:
    where = result["outputs"]["scores"]
    return Datastore.get(where["datastore"]).read_text(f"{where['path']}/parallel_run_step.txt").splitlines()


def test_example_scores_every_file_then_rescores_only_the_changed_mini_batch(home: dict[str, str]) -> None:
    airflow_dags_test(EXAMPLE, dags_folder=EXAMPLES, env=home)
    state, tasks = last_run_states(EXAMPLE)
    assert state == "success" and set(tasks.values()) == {"success"}, tasks
    first = last_run_xcom(EXAMPLE, "score.gather")
    assert [r["reused"] for r in _batches(EXAMPLE)] == [False] * 3  # 20 + 20 + 10 files
    assert len(_mapped_results(EXAMPLE, "score.mini_batch")) == 2  # node_count task instances, not one per batch
    lines = _scores(first)
    assert [line.split(",")[0] for line in lines] == [f"part-{n:04d}.csv" for n in range(50)]  # mini-batch order
    assert first["registered"] == [{"name": "scores", "version": 1, "created": True}]
    record = read_record(first["step_run_id"])
    assert record["metrics"]["items"] == 50 and record["metrics"]["items_failed"] == 0

    store = Datastore.get_default()
    store.write_text("samples/scoring/part-0025.csv", "x1,x2\n2.0,0.0\n")
    airflow_dags_test(EXAMPLE, dags_folder=EXAMPLES, env=home)
    batches = _batches(EXAMPLE)
    assert [r["reused"] for r in batches] == [True, False, True]
    assert [[r["index"] for r in node] for node in _mapped_results(EXAMPLE, "score.mini_batch")] == [[1]]
    second = last_run_xcom(EXAMPLE, "score.gather")
    assert second["reused"] is False and second["summary"]["mini_batches_reused"] == 2
    assert _scores(second)[25].startswith("part-0025.csv,1,") and _scores(second)[:25] == lines[:25]
    assert second["registered"] == [{"name": "scores", "version": 2, "created": True}]
    code, printed = mlpipe_in_process("reuse", "explain", EXAMPLE, "score.mini_batch", "--map-index", "1", "--json")
    explained = json.loads(printed)
    assert code == 0 and explained["hit"] is False and explained["step_run_id"] == batches[1]["step_run_id"]
    assert any("part-0025.csv" in line for line in explained["explanation"]), explained["explanation"]

    airflow_dags_test(EXAMPLE, dags_folder=EXAMPLES, env=home)
    assert all(r["reused"] for r in _batches(EXAMPLE))
    assert _mapped_results(EXAMPLE, "score.mini_batch") == []  # nothing to compute: no node task instance
    _, tasks = last_run_states(EXAMPLE)
    assert tasks["score.gather"] == "success", tasks
    third = last_run_xcom(EXAMPLE, "score.gather")
    assert third["reused"] is True and third["reused_from"] == second["step_run_id"]
    assert DatasetRegistry().versions("scores") == [1, 2]

    # regenerate_outputs: the planning task reuses nothing, the nodes compute every mini-batch anew
    airflow_dags_test(EXAMPLE, dags_folder=EXAMPLES, env=home, conf={"regenerate_outputs": True})
    fresh = _batches(EXAMPLE)
    assert [r["reused"] for r in fresh] == [False] * 3
    assert {r["step_run_id"] for r in fresh}.isdisjoint(r["step_run_id"] for r in batches)
    assert [len(node) for node in _mapped_results(EXAMPLE, "score.mini_batch")] == [2, 1]


def _run_faults(home: dict[str, str], fault: str) -> tuple[dict[str, str], str]:
    proc = airflow_dags_test(FAULTS, dags_folder=TEST_DAGS, env=home, conf={"fault": fault}, check=False)
    _, tasks = last_run_states(FAULTS)
    return tasks, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("fault", "failed", "message"),
    [
        pytest.param(
            "init", "score.mini_batch", "init() of faulty.py raised: RuntimeError: the model file is", id="init"
        ),
        pytest.param("raise_first", "score.gather", "2 of 5 items failed, more than the 1 allowed", id="threshold"),
    ],
)
def test_bad_inputs_commit_and_register_nothing(home: dict[str, str], fault: str, failed: str, message: str) -> None:
    store = Datastore.get_default()
    for n in range(5):
        store.write_text(f"faults/part-{n:02d}.txt", str(n))
    tasks, output = _run_faults(home, fault)
    assert tasks[failed] == "failed", tasks
    assert message in output
    assert tasks["score.gather"] in ("failed", "upstream_failed")
    assert DatasetRegistry().versions("fault_scores") == []
    gathered = store.list("dataset", recursive=True) if store.exists("dataset") else []
    assert not [p for p in gathered if ".score.gather." in p]  # nothing staged, nothing committed


def test_an_empty_input_fails_the_planning_task(home: dict[str, str]) -> None:
    tasks, output = _run_faults(home, "none")
    assert tasks["score.plan"] == "failed" and "cannot plan its mini-batches" in output


def test_a_failed_node_is_retried_and_reuses_the_mini_batches_it_committed(
    home: dict[str, str], tmp_path: Path
) -> None:
    store = Datastore.get_default()
    for n in range(5):  # mini-batches 0 and 1 on node 0, mini-batch 2 on node 1
        store.write_text(f"faults/part-{n:02d}.txt", str(n))
    marker = tmp_path / "failed-once"
    env = {**home, "MLPIPE_FAULT_MARKER": str(marker)}
    airflow_dags_test(FAULTS, dags_folder=TEST_DAGS, env=env, conf={"fault": "init_once"})
    state, tasks = last_run_states(FAULTS)
    assert state == "success" and marker.exists(), tasks
    first_node, second_node = _mapped_results(FAULTS, "score.mini_batch")  # the retry's results for node 0
    assert [r["index"] for r in first_node] == [0, 1] and [r["index"] for r in second_node] == [2]
    # mini-batch 0 was committed by the failed try and is reused by the retry, never scored twice
    assert first_node[0]["reused"] and ".m0.t1." in first_node[0]["reused_from"], first_node
    assert ".m0.t2." in first_node[0]["step_run_id"]
    assert not first_node[1]["reused"] and ".m1.t2." in first_node[1]["step_run_id"]
    by_try = {
        r["try_number"]: r
        for r in iter_records(dag_id=FAULTS)
        if r.get("task_id") == "score.mini_batch" and r.get("map_index") == 1
    }
    assert by_try[1]["status"] == "Failed" and "a passing failure" in by_try[1]["log_tail"], by_try[1]
    assert by_try[2]["status"] == "Completed"
