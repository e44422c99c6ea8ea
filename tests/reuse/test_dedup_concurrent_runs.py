"""Two DAG runs of the same pipeline at once, each an ``airflow dags test`` process, sharing the default
datastore: every step's script runs once.

Each process has its own copy of the migrated SQLite metadata DB. Dedup coordinates through the datastore only
(leases and the reuse index; task code never writes Airflow's DB), so this is what matters; two ``dags test``
processes on ONE SQLite file race when both sync the DAG folder at start ("UNIQUE constraint failed: dag.dag_id"
was seen here), which would make the test flaky for reasons that have nothing to do with dedup.

No timing is left to chance. Each step's script counts itself, then holds until the test opens that step's gate;
the test opens it only once the OTHER run has deferred on the step (its log says the trigger runs). So for each
step one run computes while the other waits in the trigger, then resumes and reuses, whichever run gets there
first.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.steps.records import iter_records
from tests.airflow_utils import REPO, TEST_DAGS, last_run_states, last_run_xcom
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


def _snapshot_db(source: Path, target: Path) -> None:
    """A consistent copy of the migrated metadata DB. sqlite's backup API, not a file copy: a file copied while
    another process of this worker writes the DB (a warm ``dags test`` server finishing) can miss a transaction or
    hold half of one, and then Airflow asks for ``db migrate``."""
    with (
        contextlib.closing(sqlite3.connect(source, timeout=60)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
        (version,) = dst.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version, f"the copy of {source} has no migration version"


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
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",  # the waiter defers (its trigger runs in line here)
    }
    second_db = tmp_path / "airflow-second-run.db"
    _snapshot_db(airflow_db / "airflow.db", second_db)
    runs = [
        DagRunProcess(env),
        DagRunProcess({**env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{second_db}"}),
    ]
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

    records = list(iter_records(store, dag_id=DAG_ID))
    assert len(records) == 4  # two runs, two steps
    for step in STEPS:
        produced, reused = sorted((r for r in records if r["task_id"] == step), key=lambda r: r["status"])
        assert (produced["status"], reused["status"]) == ("Completed", "Reused")
        assert reused["reused_from"] == produced["step_run_id"] and produced["run_id"] != reused["run_id"]
        assert _folders(reused) == _folders(produced)  # the waiter's outputs are the producer's folders
        entry = ReuseIndex(store).get(reused["reuse"]["key"])
        assert entry is not None and entry.step_run_id == produced["step_run_id"]
        assert produced["reuse"]["key"] == reused["reuse"]["key"]
    # the run on the session's DB, as Airflow saw it: a success whose steps say what their records say
    state, tasks = last_run_states(DAG_ID)
    assert state == "success" and tasks == {"first": "success", "second": "success"}
    by_id = {r["step_run_id"]: r for r in records}
    for step in STEPS:
        result = last_run_xcom(DAG_ID, step)
        assert result["reused"] == (by_id[result["step_run_id"]]["status"] == "Reused")
    second = next(r for r in records if r["task_id"] == "second" and r["status"] == "Completed")
    (out,) = second["outputs"]
    assert store.read_text(out["path"] + "/result.txt") == "first\nsecond\n"


def _folders(record: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((o["datastore"], o["path"]) for o in record["outputs"])


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
