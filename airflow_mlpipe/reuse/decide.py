"""The reuse decision: may this step run take the outputs of an earlier one instead of running?

A hit needs an index entry for the key whose outputs still exist, are complete and match their manifests
(``verify_outputs``: each output's completion marker against the entry, and a listing of the files it names
with their sizes: no download). An entry that fails the check is dropped. Every decision carries an
explanation; a miss says what differs from the nearest earlier run of the same step.

Used by ``PythonScriptOperator`` at the start of a step run, and by whatever waits for an identical step run in
progress elsewhere (call ``find_reusable`` or ``decide`` again once it has finished).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.core.model import Record
from airflow_mlpipe.exceptions import DatastoreNotFoundError, IncompleteFolderError
from airflow_mlpipe.fingerprint.identity import identities, store_kept_identity
from airflow_mlpipe.reuse.explain import NO_EARLIER_RUN, TreeLoader, explain_changes, mutable_image_note, rerun_line
from airflow_mlpipe.reuse.history import StepHistory
from airflow_mlpipe.reuse.index import ReuseEntry, ReuseIndex
from airflow_mlpipe.reuse.step_key import StepFingerprint
from airflow_mlpipe.steps.records import now_iso
from airflow_mlpipe.storage.datastore import Datastore

log = logging.getLogger(__name__)

DISABLED = "reuse disabled (allow_reuse=False)"
REGENERATE = "regenerate_outputs requested in the trigger conf"


@dataclass(frozen=True)
class ReusePolicy(Record):
    """:param ttl: seconds an index entry may be reused for (None: no limit).
    :param rerun_of: the earlier, successful try of the same task instance when this one was cleared to run
        again: it computes anew (as ``regenerate``), and the explanation says why."""

    allow_reuse: bool = True
    regenerate: bool = False
    ttl: float | None = None
    rerun_of: str | None = None


@dataclass(frozen=True)
class Lookup:
    """The index entry usable for a key (``entry``), or why there is none.

    ``reason``: ``hit``, ``no_entry``, ``corrupt``, ``expired`` or ``stale``; ``problem``: that reason in words.
    """

    entry: ReuseEntry | None
    reason: str
    problem: str | None = None


@dataclass(frozen=True)
class ReuseDecision:
    """:param reason: ``hit``, ``disabled``, ``regenerate`` or a ``Lookup`` reason of a miss.
    :param entry: the entry whose outputs are reused (hits only).
    :param compared_with: the step run the explanation of a miss compares against."""

    hit: bool
    key: str
    reason: str
    explanation: tuple[str, ...]
    decided_at: str
    entry: ReuseEntry | None = None
    compared_with: str | None = None

    @property
    def reused_from(self) -> str | None:
        return self.entry.step_run_id if self.hit and self.entry is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hit": self.hit,
            "key": self.key,
            "reason": self.reason,
            "explanation": list(self.explanation),
            "decided_at": self.decided_at,
            "reused_from": self.reused_from,
            "compared_with": self.compared_with,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReuseDecision:
        """A decision as a run record keeps it (without the entry)."""
        return cls(
            hit=bool(data["hit"]),
            key=str(data["key"]),
            reason=str(data["reason"]),
            explanation=tuple(str(line) for line in data.get("explanation") or ()),
            decided_at=str(data.get("decided_at") or ""),
            compared_with=data.get("compared_with"),
        )


def decide(
    fingerprint: StepFingerprint,
    *,
    step_run_id: str,
    index: ReuseIndex,
    policy: ReusePolicy = ReusePolicy(),  # frozen: one shared default is safe
    history: StepHistory | None = None,
    load_tree: TreeLoader | None = None,
    now: dt.datetime | None = None,
) -> ReuseDecision:
    """Hit or miss for ``fingerprint``, with its explanation. Reads the index (dropping a stale entry) and the
    step's history; writes nothing else (``StepHistory.add`` keeps the decision)."""
    decided_at = now_iso()
    key = fingerprint.digest
    if not policy.allow_reuse:
        return ReuseDecision(False, key, "disabled", (DISABLED,), decided_at)
    if policy.rerun_of:
        return ReuseDecision(False, key, "rerun", (rerun_line(policy.rerun_of),), decided_at)
    if policy.regenerate:
        return ReuseDecision(False, key, "regenerate", (REGENERATE,), decided_at)
    lookup = find_reusable(index, key, ttl=policy.ttl, now=now)
    if lookup.entry is not None:
        entry = lookup.entry
        line = (
            f"reused the outputs of step run {entry.step_run_id} (same reuse key {key[:12]}, made "
            f"{entry.created_at}); its outputs are complete and match their manifests"
        )
        note = mutable_image_note(fingerprint.key.environment.get("image"))
        return ReuseDecision(True, key, "hit", (line, *([note] if note else [])), decided_at, entry=entry)
    previous = history.previous(step_run_id) if history is not None else None
    lines = [lookup.problem] if lookup.problem else []
    changes = explain_changes(fingerprint, previous, load_tree=load_tree)
    if changes == [NO_EARLIER_RUN] and lines:
        changes = []  # the index knew the key: an earlier run of another step, or of a forgotten history
    lines += changes
    if not lines and previous is not None:
        lines.append(
            f"the earlier run {previous.step_run_id} had the same reuse key but left no reusable outputs (it failed "
            "or is still running, or its index entry was removed)"
        )
    return ReuseDecision(
        False,
        key,
        lookup.reason,
        tuple(lines),
        decided_at,
        compared_with=previous.step_run_id if previous is not None else None,
    )


def find_reusable(index: ReuseIndex, key: str, *, ttl: float | None = None, now: dt.datetime | None = None) -> Lookup:
    """The entry for ``key`` when its outputs can be reused now; a stale entry (outputs gone or changed) is
    dropped, a corrupt one left for the next successful run to overwrite."""
    entry = index.get(key)
    if entry is None:
        if index.store.exists(index.path(key)):
            return Lookup(
                None,
                "corrupt",
                "the reuse index entry for this key is corrupt, or was not written by a step run (its seal does not "
                "hold); ignored: this run overwrites it",
            )
        return Lookup(None, "no_entry")
    if ttl is not None:
        age = _age_seconds(entry.created_at, now)
        if age is None or age > ttl:
            return Lookup(
                None,
                "expired",
                f"the earlier outputs (step run {entry.step_run_id}, made {entry.created_at}) are older than "
                f"reuse_ttl ({ttl:g} s)",
            )
    problem = verify_outputs(entry)
    if problem is not None:
        _drop_if_unchanged(index, entry)
        return Lookup(None, "stale", problem)
    return Lookup(entry, "hit")


def verify_outputs(entry: ReuseEntry) -> str | None:
    """None when every output of ``entry`` is still there, complete and as its manifest says; else what is
    wrong, in words. Reads each output's marker and one listing of its folder."""
    for output in entry.outputs:
        problem = _verify_output(output)
        if problem is not None:
            return problem
    return None


def _verify_output(output: Mapping[str, Any]) -> str | None:
    name, path = output.get("name"), str(output.get("path"))
    try:
        store = Datastore.get(str(output.get("datastore")))
        store.config  # noqa: B018 -- looked up here, so that a datastore that is gone is a miss, not an error
    except DatastoreNotFoundError:
        return f"earlier output {name} is in datastore {output.get('datastore')!r}, which no longer exists"
    try:
        marker = store.read_marker(path)
    except IncompleteFolderError:
        if store.exists(path):
            return f"earlier output {name} is incomplete ({path} has no completion marker)"
        return f"earlier outputs are gone ({path} missing)"
    except (ValueError, TypeError):
        return f"earlier output {name} has an unreadable completion marker ({path})"
    expected = (output.get("manifest") or {}).get("digest")
    if marker.get("digest") != expected:
        return f"earlier output {name} was overwritten since ({path} holds other content)"
    listing = store.list(path, recursive=True, detail=True)
    expected = marker.get("entries") or ()
    missing = [str(item.get("path")) for item in expected if str(item.get("path")) not in listing]
    if missing:
        return f"earlier outputs are gone ({missing[0]} missing)"
    for item in expected:
        if int(listing[str(item.get("path"))].get("size") or 0) != int(item.get("size") or 0):
            return f"earlier output {name} changed since ({item.get('path')} has another size)"
    now = _identities_now(store, {str(item.get("path")): listing[str(item.get("path"))] for item in expected})
    for item in expected:
        kept = now.get(str(item.get("path")))
        if kept is not None and kept[0] == item.get("kind") and kept[1] != item.get("value"):
            return f"earlier output {name} changed since ({item.get('path')} has other content)"
    return None


def _identities_now(store: Datastore, infos: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """Content identities as the store shows them now: a local file's hash (the stat cache skips unchanged
    files, so a same-size rewrite in place is seen), an object store's MD5 or ETag from the listing (no read)."""
    if store.protocol in ("file", "memory"):
        return {p: (i.kind, i.value) for p, i in identities(store, infos).items()}
    found = {}
    for p, info in infos.items():
        kept = store_kept_identity(info)
        if kept is not None:
            found[p] = kept
    return found


def _drop_if_unchanged(index: ReuseIndex, stale: ReuseEntry) -> None:
    """Drop the stale entry, unless another run has just replaced it with a good one."""
    current = index.get(stale.key)
    if current is not None and current.step_run_id != stale.step_run_id:
        return
    log.info("dropping the stale reuse index entry %s (step run %s)", stale.key, stale.step_run_id)
    index.drop(stale.key)


def _age_seconds(created_at: str, now: dt.datetime | None) -> float | None:
    try:
        made = dt.datetime.fromisoformat(created_at)
    except ValueError:
        return None
    if made.tzinfo is None:
        made = made.replace(tzinfo=dt.UTC)
    return ((now or dt.datetime.now(dt.UTC)) - made).total_seconds()
