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

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.datasets.seal import SEAL_FIELD, seal_of, seal_problem
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.paged import list_page, newest_first_name, unique_of, write_listed

log = logging.getLogger(__name__)

RUN_INDEX_ROOT = "_mlpipe/index/runs"
INDEXED_MARKER = f"{RUN_INDEX_ROOT}/indexed.json"
SUMMARY_FORMAT = 1
SUMMARY_SALT = b"airflow-mlpipe step run summary\n"
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

    write_listed(store, dict.fromkeys(summary_paths(record), _sealed_summary(record)))
    if record.get("status") in (COMPLETED, REUSED, FAILED):
        try:
            note_readers(record, store)
        except Exception as exc:
            log.warning("step run %s: could not index the dataset versions it read: %s", record["step_run_id"], exc)


def _sealed_summary(record: Mapping[str, Any]) -> bytes:
    summary = json.loads(json.dumps(summary_of(record), default=str))
    return json.dumps({**summary, SEAL_FIELD: seal_of(summary, SUMMARY_SALT)}, sort_keys=True).encode("utf-8")


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
    parsed = [(path, _parsed(bodies.get(path) or FileNotFoundError(path))) for path in page.paths]
    return RunsPage(tuple(summary_rows(store, parsed)), page.next_token)


def iter_runs(store: Datastore, *, dag_id: str | None = None, task_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Every summary, newest first, a page at a time (stop early: each page costs a listing and its reads)."""
    token: str | None = None
    while True:
        page = list_runs(store, dag_id=dag_id, task_id=task_id, limit=200, token=token)
        yield from page.rows
        if page.next_token is None:
            return
        token = page.next_token


def _parsed(body: bytes | Exception) -> Any:
    if isinstance(body, Exception):
        return body
    try:
        return json.loads(body)
    except ValueError as exc:
        return exc


def summary_rows(store: Datastore, summaries: Sequence[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a page of summaries (each its path and its parsed JSON, or the error reading it): a summary
    that cannot be read, or that fails its seal, is a row with its ``step_run_id`` and ``error``. Summaries are
    sealed as records are (``steps.record_seals``); one without a seal is older code's when the store dates it
    before records were sealed (a request each, made together, and remembered)."""
    unsealed = [(p, data) for p, data in summaries if isinstance(data, dict) and SEAL_FIELD not in data]
    legacy: dict[str, bool] = {}
    if unsealed:
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = pool.map(lambda item: _written_before_seals(store, *item), unsealed)
            legacy = dict(zip((p for p, _ in unsealed), found, strict=True))
    return [_row(path, data, legacy.get(path, False)) for path, data in summaries]


def _row(path: str, data: Any, legacy: bool) -> dict[str, Any]:
    step_run_id = unique_of(path)
    if isinstance(data, Exception):
        return _error_row(step_run_id, f"unreadable run summary {path}: {data}")
    if not isinstance(data, dict) or data.get("format") != SUMMARY_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        return _error_row(step_run_id, f"unreadable run summary {path}: format {found!r} is not 1")
    problem = _seal_problem(data, step_run_id, legacy)
    if problem:
        return _error_row(step_run_id, f"run summary {path} failed its seal and is refused, as {problem}")
    return {k: v for k, v in data.items() if k not in ("format", SEAL_FIELD)}


def _seal_problem(data: Mapping[str, Any], step_run_id: str, legacy: bool) -> str | None:
    if data.get("step_run_id") != step_run_id:
        return f"it is the summary of step run {data.get('step_run_id')!r}, copied under another name"
    if SEAL_FIELD not in data:
        return None if legacy else "it carries no seal and the store dates it after records began to be sealed"
    # A container step's runner seals with its step run's attempt key (datasets.seal.attempt_seal_key).
    return seal_problem(data, SUMMARY_SALT, attempt_sealed=True)


def _error_row(step_run_id: str, error: str) -> dict[str, Any]:
    return {"step_run_id": step_run_id, "status": None, "error": error}


_LEGACY: set[tuple[str, str, str]] = set()  # (datastore URL, path, content digest): older code's unsealed summaries


def _written_before_seals(store: Datastore, path: str, data: Mapping[str, Any]) -> bool:
    from airflow_mlpipe.datasets.seal_dates import SealedSince
    from airflow_mlpipe.steps.record_seals import SEALED_MARKER

    content = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    known = (store.url, path, content)
    if known in _LEGACY:
        return True
    try:
        legacy = SealedSince(store, SEALED_MARKER, "step run records").written_before(path)
    except OSError:
        return False
    if legacy and len(_LEGACY) < 20_000:
        _LEGACY.add(known)
    return legacy


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
    """Write the summaries of every record in the datastore (reads them all: a migration, not a listing).
    Returns how many it indexed (``rebuild``: also which it could not)."""
    return rebuild(store).indexed


@dataclass(frozen=True)
class Rebuilt:
    """What ``rebuild`` did: how many records it indexed, and one line per record it could not read (each listed
    as a row with its error instead)."""

    indexed: int
    unreadable: tuple[str, ...]


def rebuild(store: Datastore) -> Rebuilt:
    """``reindex``, saying which records could not be read: a record that is not JSON, not an object, lacks
    fields or fails its seal is reported and listed as a row with its error; the others are indexed."""
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
        except ValueError as exc:  # corrupt, or refused by its seal: the message names it and the fix
            unreadable.append(str(exc))
            _write_error_summary(store, srid, str(exc).removeprefix(f"step run {srid}: "))
            record = None
        if record is not None and record.get("step_run_id"):
            if not record.get("created_at"):
                record["created_at"] = _spec_time(store, str(record["step_run_id"]))
            write_summaries(record, store)
            count += 1
    if unreadable:
        log.warning(
            "%d step run records cannot be read and are listed as rows with their errors: %s",
            len(unreadable),
            "; ".join(unreadable[:20]) + (" ..." if len(unreadable) > 20 else ""),
        )
    marker = {"format": SUMMARY_FORMAT, "indexed_at": now_iso(), "records": count, "readers": True}
    if unreadable:
        marker["unreadable"] = unreadable[:100]
    store.write_json(INDEXED_MARKER, marker)
    return Rebuilt(count, tuple(unreadable))


# Where a row without a time of its own sorts (last): the same key at every reindex, never a new row.
_NO_TIME = "1970-01-01T00:00:00+00:00"


def _write_error_summary(store: Datastore, step_run_id: str, error: str) -> None:
    """A row for a step run whose record cannot be read: its id and the error, where its record's row would be
    (the time and the DAG and task of its spec, when that reads) so that a record restored later replaces it."""
    from airflow_mlpipe.steps.records import read_spec

    try:
        spec = read_spec(step_run_id, store)
    except ValueError:  # unreadable, or refused by its seal: the row is listed with every DAG's runs only
        spec = None
    moment = (spec.created_at if spec is not None else None) or _NO_TIME
    name = newest_first_name(moment, step_run_id)
    paths = [f"{scope_folder()}/{name}"]
    if spec is not None:
        paths += [f"{scope_folder(spec.dag_id)}/{name}", f"{scope_folder(spec.dag_id, spec.task_id)}/{name}"]
    row = {"step_run_id": step_run_id, "created_at": spec.created_at if spec is not None else None, "error": error}
    if spec is not None:
        row.update(spec.attempt.to_dict())
    write_listed(store, dict.fromkeys(paths, _sealed_summary(row)))


def _spec_time(store: Datastore, step_run_id: str) -> str | None:
    """When the spec of a record without a time was written (None: none, unreadable, or refused by its seal)."""
    from airflow_mlpipe.steps.records import spec_path, spec_refusal

    try:
        spec = store.read_json(spec_path(step_run_id))
        if spec_refusal(step_run_id, spec, store):
            return None
        return str(spec.get("created_at") or "") or None
    except (FileNotFoundError, ValueError, AttributeError):
        return None
