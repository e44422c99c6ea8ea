"""Step run records in the default datastore: ``_mlpipe/runs/<step_run_id>/`` holds ``spec.json`` (what the
attempt does, written once before launch), ``commit.json`` (its outputs, written once: the attempt's commit
point), ``record.json`` (what happened, for people and the UI), ``logs/`` and ``artifacts/``.

Statuses of ``record.json``: ``Running`` (the runner started), ``Committed`` (the outputs are committed; the
finish path has not yet registered and marked them), ``Completed``, ``Reused``, ``Failed``.

``record.json`` and ``commit.json`` are sealed when written and checked when read (``steps.record_seals``), and
so is ``spec.json`` (``steps.spec_seals``): one that fails its seal is refused, never acted on.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from airflow_mlpipe.core.checks import shown
from airflow_mlpipe.core.secrets import connection_secrets, scrub
from airflow_mlpipe.exceptions import MlpipeError, TamperedRecordError
from airflow_mlpipe.steps import record_seals, spec_seals
from airflow_mlpipe.steps.spec import SpecError, StepSpec
from airflow_mlpipe.storage.datastore import Datastore

log = logging.getLogger(__name__)

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
_CORRUPT_FIX = "restore it from a backup or delete it"


class CorruptRecordError(MlpipeError, ValueError):
    """A stored record that is not JSON, not an object, or lacks the fields every record has: nothing is taken
    from it (a claim's holder is judged by its lease instead, ``runner.claims``)."""


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
_SPEC_FIX = (
    "Nothing is run or finished from it: if a step script or a person wrote or changed it, delete it, then clear the "
    "task (its next try plans a spec of its own)"
)


def write_spec(spec: StepSpec, store: Datastore | None = None) -> bool:
    """Write the attempt's spec, sealed (``steps.spec_seals``), unless it exists (a spec is never replaced); True
    when this call wrote it."""
    store = _store(store)
    return store.create_if_absent(spec_path(spec.step_run_id), spec_seals.sealed_spec(spec.to_dict(), store))


def read_spec(step_run_id: str, store: Datastore | None = None) -> StepSpec | None:
    """The attempt's spec (None: it was not planned yet), once its seal holds; ``TamperedRecordError`` (a
    ``ValueError``) naming it when refused: a spec that failed its seal is never run or finished from."""
    store = _store(store)
    try:
        body = store.read_bytes(spec_path(step_run_id))
    except FileNotFoundError:
        return None
    return _verified_spec(step_run_id, body, store)


def read_spec_at(path: str, store: Datastore | None = None, *, launched: str | None = None) -> StepSpec:
    """The spec at ``path`` (the runner's ``--spec``), once its seal holds for the step run its folder names.

    :param launched: the digest of the spec its worker launched (``spec_seals.digest``): a spec replaced since
        is refused, whatever its seal (a runner without the registry key cannot check a keyed one)."""
    parts = path.strip("/").split("/")
    step_run_id = parts[-2] if len(parts) >= 2 else ""
    if not step_run_id or path.strip("/") != spec_path(step_run_id):
        raise SpecError(f"{path!r} is not the path of a step spec ({spec_path('<step_run_id>')})")
    store = _store(store)
    spec = _verified_spec(step_run_id, store.read_bytes(path), store)
    if launched and spec_seals.digest(spec) != launched:
        raise TamperedRecordError(
            f"step run {step_run_id}: its spec {path!r} in datastore {store.name!r} is not the one its worker "
            f"launched (it was replaced since) and is refused. {_SPEC_FIX}"
        )
    return spec


def spec_refusal(step_run_id: str, data: Any, store: Datastore, *, written: dt.datetime | None = None) -> str | None:
    """Why the spec ``data`` (read in a batch from the folder of ``step_run_id``) is refused, in one line naming
    it; None when its seal holds. ``written``: its time from a listing, when the caller has it."""
    path = spec_path(step_run_id)
    refused = spec_seals.refusal(data, step_run_id=step_run_id, path=path, store=store, written=written)
    if not refused:
        return None
    return (
        f"step run {step_run_id}: its spec {path!r} in datastore {store.name!r} failed its seal and is refused, as "
        f"{refused}. {_SPEC_FIX}"
    )


def _verified_spec(step_run_id: str, body: bytes, store: Datastore) -> StepSpec:
    data = json.loads(body)
    refused = spec_refusal(step_run_id, data, store)
    if refused:
        raise TamperedRecordError(refused)
    return StepSpec.from_dict(record_seals.without_seal(data))


# -- record -----------------------------------------------------------------------------------------------------
def read_record(step_run_id: str, store: Datastore | None = None) -> dict[str, Any]:
    """The record, once its seal holds (``steps.record_seals``); ``TamperedRecordError`` (a ``ValueError``)
    naming it when refused, ``FileNotFoundError`` when there is none."""
    store = _store(store)
    return verified_record(step_run_id, store.read_bytes(record_path(step_run_id)), store)


def verified_record(step_run_id: str, body: bytes, store: Datastore) -> dict[str, Any]:
    """The record stored as ``body`` in the folder of ``step_run_id`` (read in a batch), once its seal holds;
    ``CorruptRecordError`` naming it when it is not a record (``record_problem``)."""
    path = record_path(step_run_id)
    record = _verified(step_run_id, body, store, record_seals.RECORD_SALT, path, "record")
    problem = record_problem(record)
    if problem:
        raise CorruptRecordError(_corrupt(step_run_id, store, path, "record", problem))
    return record


# Fields a record may lack (older code's), but which hold these when present: what readers index into.
_OBJECT_FIELDS = ("metrics", "snapshot_info", "reuse")
_OBJECT_LIST_FIELDS = ("inputs", "outputs")


def record_problem(record: Mapping[str, Any]) -> str | None:
    """What makes ``record`` (an object) no step run record, in words; None when it is one. A sealed record is
    always one; this catches older code's unsealed records that were changed or cut short."""
    status = record.get("status")
    if not isinstance(status, str) or not status:
        return f"its status is {shown(status)}, not a status such as {RUNNING!r} or {COMPLETED!r}"
    for field in _OBJECT_FIELDS:
        if record.get(field) is not None and not isinstance(record[field], Mapping):
            return f"its {field!r} is {shown(record[field])}, not an object"
    for field in _OBJECT_LIST_FIELDS:
        items = record.get(field)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
            return f"its {field!r} is {shown(items)}, not a list of objects"
        unnamed = [item for item in items if not isinstance(item.get("name"), str)]
        if unnamed:
            return f"an entry of its {field!r} has no name: {shown(unnamed[0])}"
        if any(item.get("manifest") is not None and not isinstance(item["manifest"], Mapping) for item in items):
            return f"an entry of its {field!r} has a manifest that is not an object"
    return None


def record_or_refusal(step_run_id: str, store: Datastore | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """The record (None when there is none or it is unreadable or corrupt), or why it was refused: for decisions
    that must tell "no record" from "a record that failed its seal" (a claim's holder keeps its claim on the
    latter)."""
    try:
        return read_record(step_run_id, store), None
    except TamperedRecordError as exc:
        return None, str(exc)
    except (FileNotFoundError, ValueError, TypeError):
        return None, None


def record_or_why(step_run_id: str, store: Datastore | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """For pages people read: the record, or why it cannot be shown (it failed its seal, or it is corrupt);
    (None, None) when there is none."""
    try:
        return read_record(step_run_id, store), None
    except (TamperedRecordError, CorruptRecordError) as exc:
        return None, str(exc)
    except (FileNotFoundError, ValueError, TypeError):
        return None, None


def find_record(step_run_id: str, store: Datastore | None = None) -> dict[str, Any] | None:
    """The record, or None when there is none, it is unreadable or it failed its seal (then a warning names it):
    a record is for people, and no decision takes one that failed its seal."""
    record, refused = record_or_refusal(step_run_id, store)
    if refused:
        log.warning("%s", refused)
    return record


def write_record(record: Mapping[str, Any], store: Datastore | None = None) -> None:
    """Write the record, scrubbed of credentials (``core.secrets``: it is for people and the UI) and sealed, then
    its summaries in the newest-first listings (``steps.run_index``)."""
    from airflow_mlpipe.steps.run_index import write_summaries

    store = _store(store)
    record = scrub_record(record, store)
    path = record_path(str(record["step_run_id"]))
    store.write_bytes(path, record_seals.sealed_record(record, record_seals.RECORD_SALT, store))
    write_summaries(record, store)


def scrub_record(record: Mapping[str, Any], store: Datastore) -> dict[str, Any]:
    """``record`` without the credentials of the default datastore and of the connections this process holds."""
    return dict(scrub(dict(record), known_secrets(store), names=False))


# Credentials this process was given otherwise (a LocalCompute step's private variables, for its runner).
_KEPT_SECRETS: list[str] = []


def keep_secret(values: Iterable[str]) -> None:
    """Add ``values`` to what this process's records and logs must not show (``known_secrets``)."""
    _KEPT_SECRETS.extend(v for v in values if v)


def known_secrets(store: Datastore) -> list[str]:
    """The credentials a record or log written to ``store`` must not show wherever they appear: the store's own,
    those of every connection this process was given (a step runner's datastores) and those kept by
    ``keep_secret``."""
    known = (*store.config.secret_values, *connection_secrets(os.environ), *_KEPT_SECRETS)
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
    store = _store(store)
    sealed = record_seals.sealed_record(body, record_seals.COMMIT_SALT, store)
    return store.create_if_absent(commit_path(step_run_id), sealed)


def read_commit(step_run_id: str, store: Datastore | None = None) -> dict[str, Any] | None:
    """The commit record (None: the attempt did not commit), once its seal holds; ``TamperedRecordError``
    naming it when refused: a commit that failed its seal is never handed on."""
    store = _store(store)
    try:
        body = store.read_bytes(commit_path(step_run_id))
    except FileNotFoundError:
        return None
    path = commit_path(step_run_id)
    data = _verified(step_run_id, body, store, record_seals.COMMIT_SALT, path, "commit record")
    if data.get("format") != COMMIT_FORMAT:
        raise SpecError(f"step run {step_run_id}: its commit record {path} is not readable")
    return data


def record_refusal(
    step_run_id: str, data: Mapping[str, Any], store: Datastore, *, written: dt.datetime | None = None
) -> str | None:
    """Why the record ``data`` (read in a batch from the folder of ``step_run_id``) is refused, in one line naming
    it; None when its seal holds. ``written``: its time from a listing, when the caller has it."""
    return _refusal(step_run_id, data, store, record_seals.RECORD_SALT, record_path(step_run_id), "record", written)


def _refusal(
    step_run_id: str,
    data: Mapping[str, Any],
    store: Datastore,
    salt: bytes,
    path: str,
    what: str,
    written: dt.datetime | None = None,
) -> str | None:
    refused = record_seals.refusal(
        data,
        salt=salt,
        step_run_id=step_run_id,
        path=path,
        store=store,
        written=written,
    )
    if not refused:
        return None
    return (
        f"step run {step_run_id}: its {what} {path!r} in datastore {store.name!r} failed its seal and is refused, "
        f"as {refused}. Nothing is taken from it: if a step script or a person wrote or changed it, delete it (the "
        "step computes again)"
    )


def _verified(step_run_id: str, body: bytes, store: Datastore, salt: bytes, path: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:  # not JSON, or not text
        raise CorruptRecordError(_corrupt(step_run_id, store, path, what, f"it is not JSON: {exc}")) from None
    if not isinstance(data, Mapping):
        kind = {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(data), "number")
        raise CorruptRecordError(_corrupt(step_run_id, store, path, what, f"it holds a JSON {kind}, not an object"))
    refused = _refusal(step_run_id, data, store, salt, path, what)
    if refused:
        raise TamperedRecordError(refused)
    return record_seals.without_seal(data)


def _corrupt(step_run_id: str, store: Datastore, path: str, what: str, problem: str) -> str:
    where = f"its {what} {path!r} in datastore {store.name!r}"
    return f"step run {step_run_id}: {where} is corrupt ({problem}); {_CORRUPT_FIX}"


# -- listing ----------------------------------------------------------------------------------------------------
def iter_records(store: Datastore | None = None, *, dag_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Step run records, newest first (optionally those of one DAG), read a page of the run index at a time."""
    from airflow_mlpipe.steps.run_index import iter_runs

    store = _store(store)
    for row in iter_runs(store, dag_id=dag_id):
        record = find_record(str(row.get("step_run_id")), store)
        if record is not None:
            yield record
