"""Step run records in the default datastore: ``_mlpipe/runs/<step_run_id>/`` holds ``spec.json`` (what the
attempt does, written once before launch), ``commit.json`` (its outputs, written once: the attempt's commit
point), ``record.json`` (what happened, for people and the UI), ``logs/`` and ``artifacts/``.

Statuses of ``record.json``: ``Running`` (the runner started), ``Committed`` (the outputs are committed; the
finish path has not yet registered and marked them), ``Completed``, ``Reused``, ``Failed``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from typing import Any

from airflow_mlpipe.core.secrets import connection_secrets, scrub
from airflow_mlpipe.steps.spec import SpecError, StepSpec
from airflow_mlpipe.storage.datastore import Datastore

RUNS_ROOT = "_mlpipe/runs"
COMMIT_FORMAT = 1

RUNNING = "Running"
COMMITTED = "Committed"
COMPLETED = "Completed"
REUSED = "Reused"
FAILED = "Failed"
# A finished attempt: what a successful task ends with.
SUCCEEDED = (COMPLETED, REUSED)
# Known credentials shorter than this are not searched for in records (patterns still find them).
_MIN_KNOWN = 8


def run_folder(step_run_id: str) -> str:
    return f"{RUNS_ROOT}/{step_run_id}"


def spec_path(step_run_id: str) -> str:
    return f"{run_folder(step_run_id)}/spec.json"


def record_path(step_run_id: str) -> str:
    return f"{run_folder(step_run_id)}/record.json"


def commit_path(step_run_id: str) -> str:
    return f"{run_folder(step_run_id)}/commit.json"


def log_path(step_run_id: str, try_number: int) -> str:
    return f"{run_folder(step_run_id)}/logs/try-{try_number}.txt"


def artifacts_folder(step_run_id: str) -> str:
    return f"{run_folder(step_run_id)}/artifacts"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _store(store: Datastore | None) -> Datastore:
    return store or Datastore.get_default()


# -- spec -------------------------------------------------------------------------------------------------------
def write_spec(spec: StepSpec, store: Datastore | None = None) -> bool:
    """Write the attempt's spec unless it exists (a spec is never replaced); True when this call wrote it."""
    return _store(store).create_json_if_absent(spec_path(spec.step_run_id), spec.to_dict())


def read_spec(step_run_id: str, store: Datastore | None = None) -> StepSpec | None:
    try:
        data = _store(store).read_json(spec_path(step_run_id))
    except FileNotFoundError:
        return None
    return StepSpec.from_dict(data)


# -- record -----------------------------------------------------------------------------------------------------
def read_record(step_run_id: str, store: Datastore | None = None) -> dict[str, Any]:
    return dict(_store(store).read_json(record_path(step_run_id)))


def find_record(step_run_id: str, store: Datastore | None = None) -> dict[str, Any] | None:
    """The record, or None when there is none (or it is unreadable: a record is for people, not for decisions)."""
    try:
        return read_record(step_run_id, store)
    except (FileNotFoundError, ValueError):
        return None


def write_record(record: Mapping[str, Any], store: Datastore | None = None) -> None:
    """Write the record, scrubbed of credentials (``core.secrets``: it is for people and the UI), then its
    summaries in the newest-first listings (``steps.run_index``)."""
    from airflow_mlpipe.steps.run_index import write_summaries

    store = _store(store)
    record = scrub_record(record, store)
    store.write_json(record_path(str(record["step_run_id"])), record)
    write_summaries(record, store)


def scrub_record(record: Mapping[str, Any], store: Datastore) -> dict[str, Any]:
    """``record`` without the credentials of the default datastore and of the connections this process holds."""
    return dict(scrub(dict(record), known_secrets(store), names=False))


def known_secrets(store: Datastore) -> list[str]:
    """The credentials a record or log written to ``store`` must not show wherever they appear: the store's own
    and those of every connection this process was given (a step runner's datastores)."""
    known = (*store.config.secret_values, *connection_secrets(os.environ))
    # A short value (a test store's "testing") would mask innocent words all over a record.
    return [k for k in dict.fromkeys(known) if len(k) >= _MIN_KNOWN]


def record_base(spec: StepSpec) -> dict[str, Any]:
    """What every record of the attempt starts with: its identity and what it was asked to do."""
    return {
        "step_run_id": spec.step_run_id,
        **spec.attempt.to_dict(),
        "created_at": spec.created_at,
        "kind": spec.kind,
        "script_name": spec.script_name,
        "snapshot": spec.snapshot,
        "compute": dict(spec.compute),
        "environment": dict(spec.environment),
        **dict(spec.extra),
        "reuse": {k: v for k, v in spec.reuse.items() if k in ("key", "components", "policy")},
    }


# -- commit -----------------------------------------------------------------------------------------------------
def write_commit(step_run_id: str, outputs: list[dict[str, Any]], store: Datastore | None = None) -> bool:
    """The attempt's commit point: its outputs (each with its full manifest), written once. From here on the
    outputs are the attempt's result, and whatever finishes the attempt registers and marks exactly these."""
    body = {"format": COMMIT_FORMAT, "step_run_id": step_run_id, "committed_at": now_iso(), "outputs": outputs}
    return _store(store).create_json_if_absent(commit_path(step_run_id), body)


def read_commit(step_run_id: str, store: Datastore | None = None) -> dict[str, Any] | None:
    try:
        data = dict(_store(store).read_json(commit_path(step_run_id)))
    except FileNotFoundError:
        return None
    if data.get("format") != COMMIT_FORMAT or data.get("step_run_id") != step_run_id:
        raise SpecError(f"step run {step_run_id}: its commit record {commit_path(step_run_id)} is not readable")
    return data


# -- listing ----------------------------------------------------------------------------------------------------
def iter_records(store: Datastore | None = None, *, dag_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Step run records, newest first (optionally those of one DAG), read a page of the run index at a time."""
    from airflow_mlpipe.steps.run_index import iter_runs

    store = _store(store)
    for row in iter_runs(store, dag_id=dag_id):
        record = find_record(str(row.get("step_run_id")), store)
        if record is not None:
            yield record
