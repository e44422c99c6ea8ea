"""Newest-first listings of step runs: a small summary per step run, kept three times (all runs, the DAG's, the
task's) under keys that sort newest first (``storage.paged``), so a page of any of them costs one listing request
and one batch of reads, however many step runs the datastore holds.

Layout: ``_mlpipe/index/runs/all/<key>``, ``_mlpipe/index/runs/dags/<dag_id>/<key>`` and
``_mlpipe/index/runs/tasks/<dag_id>/<task_id>/<key>``, with ``<key>`` = ``<day>/<inverted time>_<step_run_id>.json``
and the time the step run's spec was made (so every write of the record replaces the same three summaries).
Records written before this index existed are indexed once, by the first listing that finds no
``_mlpipe/index/runs/indexed.json`` (or by ``mlpipe runs reindex``), and with them their readers' lineage entries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.paged import list_page, newest_first_name, unique_of, write_listed

log = logging.getLogger(__name__)

RUN_INDEX_ROOT = "_mlpipe/index/runs"
INDEXED_MARKER = f"{RUN_INDEX_ROOT}/indexed.json"
SUMMARY_FORMAT = 1
_ERROR_LIMIT = 300


def scope_folder(dag_id: str | None = None, task_id: str | None = None) -> str:
    if task_id is not None and dag_id is None:
        raise ValueError("the runs of a task are listed with its DAG: pass dag_id too")
    if dag_id is None:
        return f"{RUN_INDEX_ROOT}/all"
    if task_id is None:
        return f"{RUN_INDEX_ROOT}/dags/{dag_id}"
    return f"{RUN_INDEX_ROOT}/tasks/{dag_id}/{task_id}"


def summary_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a row of a listing shows: the record's identity, status and times (not its inputs or outputs)."""
    error = record.get("error")
    return {
        "format": SUMMARY_FORMAT,
        "step_run_id": record.get("step_run_id"),
        "dag_id": record.get("dag_id"),
        "run_id": record.get("run_id"),
        "task_id": record.get("task_id"),
        "map_index": record.get("map_index", -1),
        "try_number": record.get("try_number"),
        "status": record.get("status"),
        "reused_from": record.get("reused_from"),
        "created_at": record.get("created_at"),
        "started_at": record.get("started_at"),
        "finished_at": record.get("finished_at"),
        "metrics": len(record.get("metrics") or {}),
        "outputs": [str(o.get("name")) for o in record.get("outputs") or () if isinstance(o, Mapping)],
        "error": str(error)[:_ERROR_LIMIT] if error else None,
    }


def summary_paths(record: Mapping[str, Any]) -> list[str]:
    moment = str(record.get("created_at") or record.get("started_at") or record.get("finished_at") or "")
    name = newest_first_name(moment, str(record["step_run_id"]))
    dag_id, task_id = str(record.get("dag_id")), str(record.get("task_id"))
    return [f"{scope_folder()}/{name}", f"{scope_folder(dag_id)}/{name}", f"{scope_folder(dag_id, task_id)}/{name}"]


def write_summaries(record: Mapping[str, Any], store: Datastore) -> None:
    """The record's three summaries; with its final record, also its entries as a reader of the dataset versions
    it read (``steps.readers``: lineage is for people, so a failure there is logged, never raised)."""
    from airflow_mlpipe.steps.readers import note_readers
    from airflow_mlpipe.steps.records import COMPLETED, FAILED, REUSED

    body = json.dumps(summary_of(record), sort_keys=True).encode("utf-8")
    write_listed(store, dict.fromkeys(summary_paths(record), body))
    if record.get("status") in (COMPLETED, REUSED, FAILED):
        try:
            note_readers(record, store)
        except Exception as exc:
            log.warning("step run %s: could not index the dataset versions it read: %s", record["step_run_id"], exc)


@dataclass(frozen=True)
class RunsPage:
    """One page of step runs, newest first; ``next_token`` asks for the following page (None: this is the last).
    A summary that cannot be read is a row with its ``step_run_id`` and ``error``."""

    rows: tuple[dict[str, Any], ...]
    next_token: str | None


def list_runs(
    store: Datastore,
    *,
    dag_id: str | None = None,
    task_id: str | None = None,
    limit: int = 50,
    token: str | None = None,
) -> RunsPage:
    """A page of step runs, newest first: of every DAG, of ``dag_id``, or of its task ``task_id``."""
    if token is None:
        ensure_indexed(store)
    page = list_page(store, scope_folder(dag_id, task_id), limit=limit, token=token)
    bodies: dict[str, bytes | Exception] = dict(page.inline)
    bodies.update(store.read_many([p for p in page.paths if p not in page.inline]))
    return RunsPage(tuple(_row(path, bodies.get(path)) for path in page.paths), page.next_token)


def iter_runs(store: Datastore, *, dag_id: str | None = None, task_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Every summary, newest first, a page at a time (stop early: each page costs a listing and its reads)."""
    token: str | None = None
    while True:
        page = list_runs(store, dag_id=dag_id, task_id=task_id, limit=200, token=token)
        yield from page.rows
        if page.next_token is None:
            return
        token = page.next_token


def _row(path: str, body: bytes | Exception | None) -> dict[str, Any]:
    step_run_id = unique_of(path)
    try:
        if body is None or isinstance(body, Exception):
            raise body or FileNotFoundError(path)
        data = json.loads(body)
        if not isinstance(data, dict) or data.get("format") != SUMMARY_FORMAT:
            raise ValueError(f"format {data.get('format') if isinstance(data, dict) else None!r} is not 1")
    except (OSError, ValueError) as exc:
        return {"step_run_id": step_run_id, "status": None, "error": f"unreadable run summary {path}: {exc}"}
    data.pop("format", None)
    return data


# -- records written before the index ----------------------------------------------------------------------------
def ensure_indexed(store: Datastore) -> int:
    """Index the records written before this index existed, once per datastore. Returns how many it indexed."""
    from airflow_mlpipe.steps.records import RUNS_ROOT

    try:
        marker = store.read_json(INDEXED_MARKER)
    except (FileNotFoundError, ValueError):
        marker = None
    # An index made before readers were indexed with the records is made again, once (same keys: idempotent).
    if (isinstance(marker, Mapping) and marker.get("readers")) or not store.exists(RUNS_ROOT):
        return 0
    return reindex(store)


def reindex(store: Datastore) -> int:
    """Write the summaries of every record in the datastore (reads them all: a migration, not a listing)."""
    from airflow_mlpipe.steps.records import RUNS_ROOT, now_iso, read_record

    count = 0
    try:
        folders = store.list(RUNS_ROOT)
    except FileNotFoundError:
        folders = []
    if folders:
        log.warning("building the run index once: %d step run folders", len(folders))
    unreadable = []
    for folder in folders:
        srid = folder.rsplit("/", 1)[-1]
        try:
            record: dict[str, Any] | None = read_record(srid, store)
        except FileNotFoundError:
            record = None  # planned, never ran: nothing to list
        except ValueError as exc:
            unreadable.append(f"{srid} ({exc})")
            record = None
        if record is not None and record.get("step_run_id"):
            if not record.get("created_at"):
                record["created_at"] = _spec_time(store, str(record["step_run_id"]))
            write_summaries(record, store)
            count += 1
    if unreadable:
        log.warning(
            "%d step run records are unreadable and left out of the run index (mlpipe runs show STEP_RUN_ID names "
            "the fault): %s",
            len(unreadable),
            "; ".join(unreadable[:20]) + (" ..." if len(unreadable) > 20 else ""),
        )
    marker = {"format": SUMMARY_FORMAT, "indexed_at": now_iso(), "records": count, "readers": True}
    if unreadable:
        marker["unreadable"] = unreadable[:100]
    store.write_json(INDEXED_MARKER, marker)
    return count


def _spec_time(store: Datastore, step_run_id: str) -> str | None:
    from airflow_mlpipe.steps.records import spec_path

    try:
        return str(store.read_json(spec_path(step_run_id)).get("created_at") or "") or None
    except (FileNotFoundError, ValueError, AttributeError):
        return None
