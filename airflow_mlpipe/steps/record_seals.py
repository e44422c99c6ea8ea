"""Seals on step run records (``record.json``) and commit records (``commit.json``), as registry records have.

Every write seals the record (``datasets.seal``, a salt per kind, under ``MLPIPE_REGISTRY_KEY`` where the writer
holds it), and every read checks it, with the step run id its folder names: a record changed after it was written,
one copied under another step run, or one written by anything that is not mlpipe (a step script holding the
store's credentials) is refused, never acted on.

Who seals with the key: the Airflow workers (the finish path, transfers, gathers) and the runner of a
``LocalCompute`` step (a subprocess of the worker; its script does not get the key). The runner of a container
step never holds the key: it seals its step run's records with that step run's attempt key, which the launching
worker derived from the registry key (``datasets.seal.attempt_seal_key``), so a reader holding the key refuses a
plain seal on any record, and a script that holds one step run's attempt key cannot seal another's.

Stores written before records were sealed hold unsealed ones: one the store dates before the marker
``_mlpipe/seals/runs.json`` (created by the first sealed write) is older code's and read as before; one dated after
is refused (``datasets.seal_dates``). Nothing is rewritten.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.datasets.seal import SEAL_FIELD, seal_problem, sealed_bytes
from airflow_mlpipe.datasets.seal_dates import SealedSince
from airflow_mlpipe.storage.datastore import Datastore

RECORD_SALT = b"airflow-mlpipe step run record\n"
COMMIT_SALT = b"airflow-mlpipe step run commit\n"
SEALED_MARKER = "_mlpipe/seals/runs.json"
_UNSEALED = (
    "it carries no seal and the store dates it after this datastore's step run records began to be sealed "
    f"({SEALED_MARKER}): a step script, a person, or an airflow-mlpipe older than the workers' (a step image not "
    "upgraded?) wrote it"
)


def sealed_record(body: Mapping[str, Any], salt: bytes, store: Datastore) -> bytes:
    """What a write of a run or commit record stores: ``body`` (as JSON has it) with its seal."""
    SealedSince(store, SEALED_MARKER, "step run records").mark()
    return sealed_bytes(json.loads(json.dumps(body, default=str)), salt)


def refusal(
    data: Any,
    *,
    salt: bytes,
    step_run_id: str,
    path: str,
    store: Datastore,
    written: dt.datetime | None = None,
) -> str | None:
    """Why the stored record ``data`` at ``path`` is refused (None: it is read).

    :param written: when the store wrote it, from a listing (else asked of the store for an unsealed one)."""
    since = SealedSince(store, SEALED_MARKER, "step run records")
    return sealed_refusal(
        data, kind="record", salt=salt, step_run_id=step_run_id, path=path, since=since, unsealed=_UNSEALED,
        attempt_sealed=True, written=written,
    )  # fmt: skip


def sealed_refusal(
    data: Any,
    *,
    kind: str,
    salt: bytes,
    step_run_id: str,
    path: str,
    since: SealedSince,
    unsealed: str,
    attempt_sealed: bool,
    written: dt.datetime | None = None,
) -> str | None:
    """Why a stored ``kind`` (a record, a spec) of ``step_run_id`` is refused: not an object, another step run's,
    unsealed and dated after ``since``'s marker (``unsealed`` says so), or failing its seal."""
    if not isinstance(data, Mapping):
        return f"it holds {type(data).__name__}, not a {kind}"
    if data.get("step_run_id") != step_run_id:
        return f"it is the {kind} of step run {data.get('step_run_id')!r}, copied under another name"
    if SEAL_FIELD not in data:
        return None if since.written_before(path, written) else unsealed
    return seal_problem(data, salt, attempt_sealed=attempt_sealed)


def without_seal(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != SEAL_FIELD}
