"""An attempt's outputs commit as one unit on moto's S3 too (the scheduler tests in tests/attempts cover the local
store and Azurite): the runner or the finish path killed with SIGKILL at each boundary, then the next attempt or
the next finish. Nothing partial is ever marked complete, registered or indexed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.reuse.step_key import fingerprint_step
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.finish import finish_committed
from airflow_mlpipe.steps.snapshot import scan_source, store_snapshot
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.attempts.checks import assert_attempt_consistent
from tests.conftest import make_s3_datastore

STEPS = Path(__file__).resolve().parent.parent / "scheduler_dags" / "steps"
DAG = "attempt_steps"


@pytest.fixture
def s3_default(moto_s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Datastore:
    store = make_s3_datastore(moto_s3, name="mlpipe_default")
    extra = {"url": store.config.url, **dict(store.config.storage_options)}
    monkeypatch.setenv("AIRFLOW_CONN_MLPIPE_DEFAULT", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    for name, value in {"MLPIPE_FAULT_DIR": "faults", "MLPIPE_TEST_COUNTER": "executed.txt"}.items():
        monkeypatch.setenv(name, str(tmp_path / value))
    (tmp_path / "faults").mkdir()
    resolve.clear_cache()
    return Datastore.get_default()


def _spec(store: Datastore, run_id: str, try_number: int) -> StepSpec:
    tree = scan_source(str(STEPS))
    store_snapshot(str(STEPS), tree, store)
    attempt = AttemptId(DAG, run_id, "train", try_number=try_number)
    outputs = [
        {"name": name, "datastore": store.name, "path": f"dataset/{attempt.step_run_id}/{name}",
         "path_template": "dataset/{run-id}/{output-name}", "mode": "mount",
         "registration": {"name": "unit_report", "description": "", "tags": {}} if name == "report" else None}
        for name in ("model", "report")
    ]  # fmt: skip
    arguments = [
        *({"t": "str", "v": v} for v in ("--case", run_id, "--model")),
        {"t": "output", "name": "model"},
        {"t": "str", "v": "--report"},
        {"t": "output", "name": "report"},
    ]
    fp = fingerprint_step(
        script_name="two_outputs.py", source=tree, hash_paths=None, arguments=arguments, inputs=[],
        outputs=outputs, environment={},
    )  # fmt: skip
    spec = StepSpec(
        attempt=attempt, script_name="two_outputs.py", snapshot=tree.digest, arguments=tuple(arguments),
        outputs=tuple(outputs), reuse={"key": fp.digest, "components": fp.key.components(), "details": {}},
    )  # fmt: skip
    assert records.write_spec(spec, store)
    return spec


def _runner(spec: StepSpec) -> int:
    argv = [sys.executable, "-m", "airflow_mlpipe.runner", "--spec", records.spec_path(spec.step_run_id)]
    return subprocess.run(argv, capture_output=True, env=os.environ.copy(), check=False).returncode


def _finish_in_a_process(spec: StepSpec) -> int:
    code = (
        "import sys; from airflow_mlpipe.steps import records; from airflow_mlpipe.steps.finish import "
        "finish_committed; from airflow_mlpipe.storage.datastore import Datastore; s = Datastore.get_default(); "
        "finish_committed(records.read_spec(sys.argv[1], s), s)"
    )
    argv = [sys.executable, "-c", code, spec.step_run_id]
    return subprocess.run(argv, capture_output=True, env=os.environ.copy(), check=False).returncode


@pytest.mark.parametrize("phase", ["staged_model", "before_commit", "committed"])
def test_a_runner_killed_at_a_boundary_commits_all_or_nothing(s3_default: Datastore, phase: str) -> None:
    store, run_id = s3_default, f"kill-{phase}"
    (Path(os.environ["MLPIPE_FAULT_DIR"]) / f"{DAG}.{run_id}.{phase}").touch()
    first = _spec(store, run_id, 1)
    assert _runner(first) == -9
    assert_attempt_consistent(store, first.step_run_id)  # no marker without a commit
    committed = records.read_commit(first.step_run_id, store) is not None
    assert committed == (phase == "committed")
    finisher = first if committed else _spec(store, run_id, 2)  # the try that commits
    if not committed:
        assert _runner(finisher) == 0
    record = finish_committed(finisher, store)
    assert record["status"] == "Completed"
    for attempt in (first.step_run_id, finisher.step_run_id):
        assert_attempt_consistent(store, attempt)
    assert ReuseIndex(store).get(finisher.key).step_run_id == finisher.step_run_id  # type: ignore[union-attr]
    assert [DatasetRegistry(store).get("unit_report", v).lineage["step_run_id"] for v in _versions(store)] == [
        finisher.step_run_id
    ]


@pytest.mark.parametrize("phase", ["registered_report", "marked_model", "indexed"])
def test_a_finish_killed_at_a_boundary_is_completed_by_the_next_one(s3_default: Datastore, phase: str) -> None:
    store, run_id = s3_default, f"kill-{phase}"
    spec = _spec(store, run_id, 1)
    assert _runner(spec) == 0
    (Path(os.environ["MLPIPE_FAULT_DIR"]) / f"{DAG}.{run_id}.{phase}").touch()
    assert _finish_in_a_process(spec) == -9
    assert records.read_record(spec.step_run_id, store)["status"] == "Committed"  # not finished yet
    record = finish_committed(spec, store, finished_by=AttemptId(DAG, run_id, "train", try_number=2).step_run_id)
    assert record["status"] == "Completed" and record["outputs"][1]["registered"]["created"] is True
    assert_attempt_consistent(store, spec.step_run_id)
    assert len(_versions(store)) == 1  # registered once, however often the finish ran
    assert ReuseIndex(store).get(spec.key).step_run_id == spec.step_run_id  # type: ignore[union-attr]


def _versions(store: Datastore) -> list[int]:
    return DatasetRegistry(store).versions("unit_report")
