"""Shared by the lease, trigger, sensor and dedup tests: a fake clock, a lease holder in another process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from airflow_mlpipe.reuse.index import ReuseEntry
from airflow_mlpipe.storage.datastore import Datastore

REPO = Path(__file__).resolve().parents[2]


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def store_env(store: Datastore) -> dict[str, str]:
    """The environment that makes ``store`` the default datastore of a child process."""
    extra = {"url": store.config.url, **dict(store.config.storage_options)}
    return {"AIRFLOW_CONN_MLPIPE_DEFAULT": json.dumps({"conn_type": "mlpipe_datastore", "extra": extra})}


HOLDER_SCRIPT = """
import sys, time
from airflow_mlpipe.reuse.lease import Leases
key, holder, ttl = sys.argv[1], sys.argv[2], float(sys.argv[3])
lease = Leases().acquire(key, holder, ttl, info={"step_run_id": "other-process"})
if lease is None:
    print("NOT ACQUIRED", flush=True)
    sys.exit(2)
with lease.keep_alive():
    print("HELD", lease.record.generation, flush=True)
    time.sleep(600)
"""


def start_holder(store: Datastore, key: str, holder: str, ttl: float) -> subprocess.Popen[str]:
    """A process holding ``key``'s lease with a heartbeat thread, until it is killed. Returns once it holds it."""
    env = {**os.environ, **store_env(store), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, key, holder, str(ttl)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("HELD"):
        proc.kill()
        raise AssertionError(f"the holder process did not get the lease: {line}{proc.stdout.read()}")
    return proc


def use_local_default(monkeypatch: object, tmp_path: Path) -> Datastore:
    """A fresh local folder as the default datastore (``$MLPIPE_HOME/datastore``) of this process and its children."""
    from airflow_mlpipe.storage import resolve

    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))  # type: ignore[attr-defined]
    resolve.clear_cache()
    return Datastore.get_default()


def entry_for(key: str, step_run_id: str = "dag.run.task", store: Datastore | None = None) -> ReuseEntry:
    """An index entry for ``key``; with ``store`` its output folder exists there, complete (so it verifies)."""
    path = f"dataset/{step_run_id}/out"
    digest = f"digest-of-{step_run_id}"
    if store is not None:
        store.write_text(f"{path}/result.txt", step_run_id)
        store.mark_complete(path, {"digest": digest, "entries": []})
    return ReuseEntry(
        key=key,
        step_run_id=step_run_id,
        dag_id="dag",
        task_id="task",
        created_at="2026-11-25T10:00:00+00:00",
        outputs=({"name": "out", "datastore": "mlpipe_default", "path": path, "manifest": {"digest": digest}},),
    )
