"""Dedup of identical steps in concurrent runs: on a reuse miss, become the producer of the key or wait for it.

A step operator calls ``claim_key`` after its reuse decision said "miss":

- ``produce``: this run holds the key's lease; compute under ``claim.lease.keep_alive()``, write the reuse index
  entry, and leave the block (which releases the lease);
- ``wait``: another live run holds it; defer to ``ReuseTrigger(**claim.trigger_kwargs())`` and, on resume, decide
  again (a ``ready`` event finds the entry; a ``lease_expired`` event passes ``take_over`` back here);
- ``ready``: the entry appeared between the caller's miss and the lease (the producer just finished): reuse it.

No Airflow import: the trigger and the operator wrap this.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.reuse.index import ReuseEntry, ReuseIndex
from airflow_mlpipe.reuse.lease import DEFAULT_CLOCK_SKEW, DEFAULT_HANDOFF, DEFAULT_TTL, Lease, LeaseRecord, Leases
from airflow_mlpipe.storage.datastore import Datastore

# A waiter looks every 2 s: one index read and one lease listing, small next to the seconds a step takes.
DEFAULT_POLL_INTERVAL = 2.0
TRIGGER_CLASSPATH = "airflow_mlpipe.triggers.reuse.ReuseTrigger"


@dataclass(frozen=True)
class DedupSettings:
    """How long a lease lives without a heartbeat, the clock-skew margin, and how often a waiter looks.

    Deployment-wide settings (every run must judge a lease alike): ``MLPIPE_REUSE_LEASE_TTL``,
    ``MLPIPE_REUSE_CLOCK_SKEW``, ``MLPIPE_REUSE_POLL_INTERVAL``, ``MLPIPE_REUSE_LEASE_HANDOFF`` (the grace a
    lease gets while its heartbeats move between a worker and the triggerer) (seconds).
    """

    lease_ttl: float = DEFAULT_TTL
    clock_skew: float = DEFAULT_CLOCK_SKEW
    poll_interval: float = DEFAULT_POLL_INTERVAL
    handoff: float = DEFAULT_HANDOFF

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DedupSettings:
        env = os.environ if environ is None else environ
        return cls(
            lease_ttl=_seconds(env, "MLPIPE_REUSE_LEASE_TTL", DEFAULT_TTL, positive=True),
            clock_skew=_seconds(env, "MLPIPE_REUSE_CLOCK_SKEW", DEFAULT_CLOCK_SKEW, positive=False),
            poll_interval=_seconds(env, "MLPIPE_REUSE_POLL_INTERVAL", DEFAULT_POLL_INTERVAL, positive=True),
            handoff=_seconds(env, "MLPIPE_REUSE_LEASE_HANDOFF", DEFAULT_HANDOFF, positive=False),
        )


def _seconds(env: Mapping[str, str], name: str, default: float, *, positive: bool) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0 or (positive and value == 0):
        raise ConfigError(f"{name}={raw!r} is not a {'positive' if positive else 'non-negative'} number of seconds")
    return value


@dataclass(frozen=True)
class Claim:
    outcome: Literal["produce", "wait", "ready"]
    key: str
    settings: DedupSettings
    lease: Lease | None = None
    holder: LeaseRecord | None = None
    entry: ReuseEntry | None = None

    def trigger_kwargs(self) -> dict[str, Any]:
        """Arguments of ``ReuseTrigger`` for a ``wait`` (primitives: they are stored with the deferred task)."""
        return {
            "key": self.key,
            "poll_interval": self.settings.poll_interval,
            "clock_skew": self.settings.clock_skew,
        }

    def describe(self) -> str:
        if self.outcome == "produce":
            return f"No other run is computing this step with these inputs: this run computes it (reuse key {self.key})"
        if self.outcome == "ready":
            assert self.entry is not None
            return f"Step run {self.entry.step_run_id} has just computed this step with the same inputs"
        who = "another run"
        if self.holder is not None:
            info = self.holder.info
            who = f"step run {info.get('step_run_id') or self.holder.holder}"
            if info.get("run_id"):
                who += f" (DAG run {info['run_id']} of {info.get('dag_id')})"
        return (
            f"{who[0].upper()}{who[1:]} is computing this step with the same inputs right now: this run waits for it "
            f"and then reuses its outputs (reuse key {self.key})"
        )


def holder_id(step_run_id: str, try_number: int) -> str:
    """Unique per attempt: a retry of the same step run is another holder."""
    return f"{step_run_id}#try{try_number}.{uuid.uuid4().hex[:8]}"


def claim_key(
    key: str,
    *,
    step_run_id: str,
    try_number: int = 1,
    info: Mapping[str, Any] | None = None,
    settings: DedupSettings | None = None,
    store: Datastore | None = None,
    take_over: LeaseRecord | None = None,
    accept_entry: bool = True,
) -> Claim:
    """Try to become the producer of ``key``; see the module's notes for the three outcomes.

    :param take_over: from a ``lease_expired`` event: the record the trigger watched go stale.
    :param accept_entry: False for a run that computes whatever the index holds (``regenerate_outputs``): it
        never gets ``ready``.
    """
    settings = settings or DedupSettings.from_env()
    leases = Leases(store, clock_skew=settings.clock_skew)
    index = ReuseIndex(leases.store)
    holder = holder_id(step_run_id, try_number)
    lease_info = {"step_run_id": step_run_id, "try_number": try_number, **dict(info or {})}
    for _ in range(5):
        lease = leases.acquire(key, holder, settings.lease_ttl, info=lease_info, take_over=take_over)
        if lease is not None:
            entry = index.get(key) if accept_entry else None
            if entry is not None:
                lease.release()
                return Claim("ready", key, settings, entry=entry)
            return Claim("produce", key, settings, lease=lease)
        current = leases.read(key)
        if current is None or leases.is_free(current):
            continue  # released between our two looks: try again
        if _earlier_try_of(current, lease_info, try_number):
            take_over = current
            continue
        return Claim("wait", key, settings, holder=current)
    # the key kept changing hands under us: someone holds it; wait for whoever that is
    return Claim("wait", key, settings, holder=leases.read(key))


_TASK_INSTANCE = ("dag_id", "run_id", "task_id", "map_index")


def _earlier_try_of(record: LeaseRecord, info: Mapping[str, Any], try_number: int) -> bool:
    """A lease left by an earlier try of this very task instance: Airflow runs one try at a time, so that try is
    gone (its worker died without releasing), and waiting for it would only wait for its ttl. Every try is its
    own step run, so the task instance is told by its fields (or, for callers without them, the step run id)."""
    try:
        earlier = int(record.info.get("try_number", try_number))
    except (TypeError, ValueError):
        return False
    if earlier >= try_number:
        return False
    if all(field in info for field in _TASK_INSTANCE[:3]):
        return all(record.info.get(field) == info.get(field) for field in _TASK_INSTANCE)
    return record.info.get("step_run_id") == info.get("step_run_id")
