"""Two DAG runs of the same pipeline at once, each an ``airflow dags test`` process on the shared SQLite metadata DB
and the same default datastore: every step's script runs once.

No timing is left to chance. Each step's script counts itself, then holds until the test opens that step's gate;
the test opens it only once the OTHER run has deferred on the step (its log says the trigger runs). So for each
step one run computes while the other waits in the trigger, then resumes and reuses, whichever run gets there
first.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.reuse.index import ReuseIndex
from tests.airflow_utils import REPO, TEST_DAGS
from tests.reuse.lease_helpers import use_local_default

DAG_ID = "reuse_dedup_pair"
STEPS = ("first", "second")
_STARTING = re.compile(r"\[DAG TEST\] starting task_id=(\w+)")


class DagRunProcess:
    """``airflow dags test DAG_ID`` in the background, its log followed line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        cmd = [sys.executable, "-m", "airflow", "dags", "test", DAG_ID]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO
        )
        self.lines: list[str] = []
        self.deferred = {step: threading.Event() for step in STEPS}
        self.ended = threading.Event()
        self.reader = threading.Thread(target=self._follow, daemon=True)
        self.reader.start()

    def _follow(self) -> None:
        assert self.proc.stdout is not None
        task = None
        for line in self.proc.stdout:
            self.lines.append(line)
            started = _STARTING.search(line)
            if started:
                task = started.group(1)
            elif "running trigger in line" in line and task in self.deferred:
                self.deferred[task].set()
        self.ended.set()

    def log(self) -> str:
        return "".join(self.lines)

    def finish(self) -> int:
        code = self.proc.wait(timeout=300)
        self.reader.join(timeout=30)
        return code


def test_two_concurrent_runs_compute_each_step_once(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = use_local_default(monkeypatch, tmp_path)
    counter, gates = tmp_path / "executions.txt", tmp_path / "gates"
    gates.mkdir()
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(TEST_DAGS),
        "PYTHONUNBUFFERED": "1",
        "MLPIPE_DEDUP_COUNTER": str(counter),
        "MLPIPE_DEDUP_GATES": str(gates),
        "MLPIPE_REUSE_POLL_INTERVAL": "0.2",
    }
    runs = [DagRunProcess(env), DagRunProcess(env)]
    try:
        for step in STEPS:
            _wait_for_a_deferral(runs, step)
            (gates / step).touch()
    finally:
        for step in STEPS:  # never leave a script holding on a failed test
            (gates / step).touch()
        codes = [run.finish() for run in runs]
    logs = [run.log() for run in runs]
    assert codes == [0, 0], "\n=====\n".join(log[-5000:] for log in logs)

    assert counter.read_text().splitlines() == list(STEPS)  # each script ran once, in all

    results = _results_by_run()
    assert len(results) == 2
    for step in STEPS:
        by_run = sorted((r[step] for r in results.values()), key=lambda r: r["reused"])
        produced, reused = by_run
        assert produced["reused"] is False and reused["reused"] is True
        assert reused["reused_from"] == produced["step_run_id"]
        assert reused["outputs"] == produced["outputs"]  # the waiter's outputs are the producer's folders
        entry = ReuseIndex(store).get(_key_of(store, reused["step_run_id"]))
        assert entry is not None and entry.step_run_id == produced["step_run_id"]
    second = next(iter(results.values()))["second"]["outputs"]["second_out"]
    assert store.read_text(second["path"] + "/result.txt") == "first\nsecond\n"


def _wait_for_a_deferral(runs: list[DagRunProcess], step: str) -> None:
    """Until one run has deferred on ``step``; fails (with both logs) when both runs end or time runs out."""
    for _ in range(1200):
        if any(run.deferred[step].is_set() for run in runs):
            return
        if all(run.ended.is_set() for run in runs):
            break
        runs[0].deferred[step].wait(0.25)
    logs = "\n=====\n".join(run.log()[-5000:] for run in runs)
    raise AssertionError(f"no run deferred on step {step!r}:\n{logs}")


def _results_by_run() -> dict[str, dict[str, Any]]:
    """{run_id: {task_id: the step's result (its return value XCom)}} for every run of the DAG."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.dag_id == DAG_ID, XComModel.key == "return_value").all()
        found: dict[str, dict[str, Any]] = {}
        for row in rows:
            found.setdefault(row.run_id, {})[row.task_id] = XComModel.deserialize_value(row)
    return found


def _key_of(store: Any, step_run_id: str) -> str:
    from airflow_mlpipe.steps.records import read_record

    return str(read_record(step_run_id, store)["reuse"]["key"])
