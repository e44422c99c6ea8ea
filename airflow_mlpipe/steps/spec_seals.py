"""Seals on step specs (``spec.json``), as step run records have them (``steps.record_seals``).

The Airflow worker that plans an attempt writes its spec once (create-if-absent), sealed with a salt of its own
(``datasets.seal``, under ``MLPIPE_REGISTRY_KEY`` where the worker holds it), and every reader checks it with the
step run id its folder names. Step run ids are predictable (DAG, run, task, map index, try), so a step script
holding the store's credentials could write the spec of a step run before that step run is planned, and the
attempt would find it and run what the script chose: a spec that fails its seal, names another step run, or
carries no seal and is dated after the marker is refused, never run or finished from.

Only a worker writes specs, so where the key is set a spec carries the keyed seal: a reader holding the key refuses
a plain one (and never takes a step run's attempt seal on a spec). A container step's runner never holds the key:
it checks everything but the HMAC, and the worker pins the spec it launches: the runner gets the spec's digest
(``MLPIPE_SPEC_DIGEST``, not a secret) and runs the spec it reads only when it is that one, so a spec replaced
between launch and the runner's start (a pod still being scheduled) is refused there too.

Specs older code wrote carry no seal: one the store dates before the marker ``_mlpipe/seals/specs.json`` (created
by the first sealed spec; a marker of its own, so that specs written after records began to be sealed but before
specs were still read after an upgrade) is read as before; one dated after is refused. Nothing is rewritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.datasets.seal import sealed_bytes
from airflow_mlpipe.datasets.seal_dates import SealedSince
from airflow_mlpipe.steps.record_seals import sealed_refusal
from airflow_mlpipe.storage.datastore import Datastore

if TYPE_CHECKING:
    from airflow_mlpipe.steps.spec import StepSpec

SPEC_SALT = b"airflow-mlpipe step spec\n"
SPEC_MARKER = "_mlpipe/seals/specs.json"
SPEC_DIGEST_ENV = "MLPIPE_SPEC_DIGEST"
_NOTE = "step specs"
_UNSEALED = (
    "it carries no seal and the store dates it after this datastore's step specs began to be sealed "
    f"({SPEC_MARKER}): a step script, a person, or an airflow-mlpipe older than the planning worker's wrote it"
)


def sealed_spec(body: Mapping[str, Any], store: Datastore) -> bytes:
    """What a worker stores as a spec: ``body`` (as JSON has it) with its seal."""
    SealedSince(store, SPEC_MARKER, _NOTE).mark()
    return sealed_bytes(json.loads(json.dumps(body, default=str)), SPEC_SALT)


def refusal(
    data: Any, *, step_run_id: str, path: str, store: Datastore, written: dt.datetime | None = None
) -> str | None:
    """Why the stored spec ``data`` at ``path`` is refused (None: it is read).

    :param written: when the store wrote it, from a listing (else asked of the store for an unsealed one)."""
    since = SealedSince(store, SPEC_MARKER, _NOTE)
    return sealed_refusal(
        data, kind="spec", salt=SPEC_SALT, step_run_id=step_run_id, path=path, since=since, unsealed=_UNSEALED,
        attempt_sealed=False, written=written,
    )  # fmt: skip


def digest(spec: StepSpec) -> str:
    """The digest of ``spec`` as launched (the same for the spec a worker holds and the one a runner reads)."""
    body = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(SPEC_SALT + body.encode("utf-8")).hexdigest()
