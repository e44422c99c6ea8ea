"""Claims on fixed output destinations: one step run at a time writes a destination without ``{run-id}``.

A fixed destination (``(store, "models/latest")``) is refused once it holds a committed output (its completion
marker), but two step runs that start before either commits would both pass that check, and the second to stage
would delete the first one's files. So the runner claims a fixed destination before the script runs, with a
conditional write of ``_mlpipe/claims/<digest of the path>.json`` in the output's datastore, and checks that it
still holds the claim when it stages the files (the commit): the second writer fails, naming the first, and
writes nothing.

A claim whose holder can no longer write is taken over (compare-and-swap on the claim): an earlier try of the same
task instance (Airflow runs one try at a time), a step run recorded as failed, one whose lease (on its reuse key,
or on itself: ``runner.writer_lease``) was released or expired (its process was killed) while its record says
Running, is gone or is corrupt, and one that has neither a readable record nor a lease. A step script can
overwrite or delete its record, so a record that is gone or corrupt never decides alone: a holder with a live
lease keeps its claim, and so does one that is running, committed or completed, or whose record failed its
seal. Destinations with ``{run-id}`` are the attempt's own and need no claim.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.core.model import Record
from airflow_mlpipe.exceptions import ConfigError, MlpipeError
from airflow_mlpipe.fingerprint.hashing import hash_bytes
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage.conditional import read_tagged, replace_if_unchanged
from airflow_mlpipe.storage.datastore import Datastore

log = logging.getLogger(__name__)

CLAIMS_ROOT = "_mlpipe/claims"
_FIX = (
    "two step runs never write one fixed destination at once: add {run-id} to the destination, e.g. "
    "(datastore, 'models/{run-id}'), so that every run writes its own folder"
)


class DestinationClaimedError(ConfigError):
    """Another step run holds the claim on a fixed output destination."""


@dataclass(frozen=True)
class DestinationClaim(Record):
    FORMAT = 1
    LABEL = "destination claim"

    path: str
    attempt: AttemptId
    claimed_at: str


def is_fixed(output: Mapping[str, Any]) -> bool:
    """A destination every run of the step writes (its template has no ``{run-id}``)."""
    template = output.get("path_template")
    return isinstance(template, str) and "{run-id}" not in template


def claim_path(path: str) -> str:
    return f"{CLAIMS_ROOT}/{hash_bytes(path.strip('/').encode('utf-8'))}.json"


def claim(name: str, store: Datastore, path: str, attempt: AttemptId) -> None:
    """Claim ``path`` for ``attempt`` (kept when it already holds it); ``DestinationClaimedError`` naming the
    holder when another step run that may still write it holds the claim."""
    where = claim_path(path)
    mine = json.dumps(DestinationClaim(path, attempt, _now()).to_dict(), sort_keys=True).encode("utf-8")
    for _ in range(10):
        tagged = read_tagged(store, where)
        holder = _holder(tagged.data) if tagged is not None else None
        if holder is not None and holder.attempt.step_run_id == attempt.step_run_id:
            return
        if holder is not None:
            stale = _stale(holder, attempt)
            if stale is None:
                raise DestinationClaimedError(_refusal(name, store, path, holder))
            log.info("output %s: taking over the claim on %r from step run %s (%s)", name, path, _id(holder), stale)
        if replace_if_unchanged(store, where, mine, tagged.tag if tagged is not None else None):
            return
    raise DestinationClaimedError(f"output {name!r}: could not claim {path!r} in datastore {store.name!r}; {_FIX}")


def check_claim(name: str, store: Datastore, path: str, attempt: AttemptId) -> None:
    """At the commit: ``attempt`` still holds the claim (nobody took it over meanwhile)."""
    tagged = read_tagged(store, claim_path(path))
    holder = _holder(tagged.data) if tagged is not None else None
    if holder is None or holder.attempt.step_run_id != attempt.step_run_id:
        taken = f"step run {_id(holder)} took it over" if holder is not None else "its claim is gone"
        raise DestinationClaimedError(
            f"output {name!r}: {path!r} in datastore {store.name!r} is no longer this step run's to write ({taken}); "
            f"nothing was committed; {_FIX}"
        )


def _holder(data: bytes) -> DestinationClaim | None:
    try:
        return DestinationClaim.from_dict(json.loads(data))
    except ValueError:
        return None  # unreadable: nobody's


def _stale(holder: DestinationClaim, attempt: AttemptId) -> str | None:
    """Why the holder can no longer write the destination (None: it may)."""
    if holder.attempt.task_instance == attempt.task_instance and holder.attempt.try_number < attempt.try_number:
        return f"an earlier try ({holder.attempt.try_number}) of this task"
    record, refused = records.record_or_refusal(holder.attempt.step_run_id)
    if refused:  # a forged record says nothing of the holder: it keeps its claim
        return None
    if record is None:  # deleted or overwritten (a step script can): only its lease tells whether it still writes
        return _lease_gone(
            holder.attempt.step_run_id, unheld="its run record is missing or corrupt, and it holds no lease"
        )
    if record.get("status") == records.FAILED:
        return "it failed"
    if record.get("status") == records.RUNNING:
        return _lease_gone(holder.attempt.step_run_id)
    return None


def _lease_gone(step_run_id: str, *, unheld: str | None = None) -> str | None:
    """Why a step run whose record says Running, or cannot be read, has stopped (None: it may be running): the
    lease it holds while it may write (``runner.writer_lease``: on itself, or on its reuse key) was released,
    stopped being renewed (its process was killed), or has passed to another run since (which takes a lease only
    once it was released or expired). ``unheld``: the answer for a step run that never held either (a Running one
    written by older code is judged running, and keeps its claim)."""
    from airflow_mlpipe.reuse.dedup import DedupSettings
    from airflow_mlpipe.reuse.lease import Leases

    leases = Leases(clock_skew=DedupSettings.from_env().clock_skew)
    said = "its record says Running" if unheld is None else "its run record is missing or corrupt"
    for key, what in _writer_leases(step_run_id):
        history = leases.history(key)
        held = [lease for lease in history if lease.info.get("step_run_id") == step_run_id]
        if not held:
            continue
        lease, latest = held[-1], history[-1]
        if lease is not latest:
            taker = latest.info.get("step_run_id") or latest.holder
            return (
                f"{said} but its lease on {what} has since passed to step run {taker} (it released it or stopped "
                "renewing it)"
            )
        if lease.released:
            return f"{said} but it released its lease on {what} (it stopped)"
        if lease.expired(leases.clock(), leases.clock_skew):
            silent = leases.clock() - lease.renewed_at
            return (
                f"{said} but its lease on {what} expired: no heartbeat for {silent:.0f} s, longer than its ttl "
                f"({lease.silence_allowed:g} s) and the clock-skew margin ({leases.clock_skew:g} s), so its process "
                "was killed"
            )
        return None
    return unheld


def _writer_leases(step_run_id: str) -> Iterator[tuple[str, str]]:
    """The leases a step run may hold while it writes, and how to name them: its own, then its reuse key's."""
    from airflow_mlpipe.runner.writer_lease import writer_lease_key

    yield writer_lease_key(step_run_id), f"step run {step_run_id} itself"
    try:
        spec = records.read_spec(step_run_id)
    except MlpipeError:  # an unreadable spec, or one that failed its seal, tells nothing of the holder's life
        return
    if spec is not None and spec.key:
        yield spec.key, f"reuse key {spec.key}"


def _refusal(name: str, store: Datastore, path: str, holder: DestinationClaim) -> str:
    record, refused = records.record_or_refusal(holder.attempt.step_run_id)
    status = str((record or {}).get("status") or "")
    doing = "writes it now" if status == records.RUNNING else f"has written it ({status})"
    if refused:
        doing = f"may write it still: its run record failed its seal ({refused})"
    elif record is None:
        doing = "may write it still: its run record is missing or corrupt, but its lease is alive"
    return (
        f"output {name!r}: {path!r} in datastore {store.name!r} is claimed by step run {_id(holder)} "
        f"({holder.attempt.describe()}, since {holder.claimed_at}), which {doing}; nothing was committed; {_FIX}. "
        f"If that step run is dead, delete {store.uri(claim_path(path))}"
    )


def _id(holder: DestinationClaim) -> str:
    return holder.attempt.step_run_id


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
