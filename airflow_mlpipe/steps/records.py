"""Step run records in the default datastore: ``_mlpipe/runs/<step_run_id>/`` holds ``spec.json``,
``record.json``, ``logs/`` and ``artifacts/``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from airflow_mlpipe.storage.datastore import Datastore

RUNS_ROOT = "_mlpipe/runs"


def run_folder(step_run_id: str) -> str:
    return f"{RUNS_ROOT}/{step_run_id}"


def spec_path(step_run_id: str) -> str:
    return f"{run_folder(step_run_id)}/spec.json"


def record_path(step_run_id: str) -> str:
    return f"{run_folder(step_run_id)}/record.json"


def log_path(step_run_id: str, try_number: int) -> str:
    return f"{run_folder(step_run_id)}/logs/try-{try_number}.txt"


def artifacts_folder(step_run_id: str) -> str:
    return f"{run_folder(step_run_id)}/artifacts"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def read_record(step_run_id: str, store: Datastore | None = None) -> dict[str, Any]:
    store = store or Datastore.get_default()
    return dict(store.read_json(record_path(step_run_id)))


def write_record(record: dict[str, Any], store: Datastore | None = None) -> None:
    store = store or Datastore.get_default()
    store.write_json(record_path(str(record["step_run_id"])), record)


def iter_records(store: Datastore | None = None, *, dag_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Every step run record (newest first), optionally only those of one DAG."""
    store = store or Datastore.get_default()
    if not store.exists(RUNS_ROOT):
        return
    records = []
    for folder in store.list(RUNS_ROOT):
        run_id = folder.rsplit("/", 1)[-1]
        if dag_id is not None and not run_id.startswith(dag_id + "."):
            continue
        try:
            record = store.read_json(record_path(run_id))
        except (FileNotFoundError, ValueError):
            continue
        if dag_id is None or record.get("dag_id") == dag_id:
            records.append(record)
    records.sort(key=lambda r: str(r.get("started_at") or ""), reverse=True)
    yield from records
