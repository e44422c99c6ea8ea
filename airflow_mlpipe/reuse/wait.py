"""One look at a reuse key from a waiter's side: is its entry ready, is a live run computing it, or is it free?

Shared by ``ReuseSensor.poke`` (one look per poke) and ``ReuseTrigger`` (a look per poll, in a thread of the
triggerer), so both judge alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_mlpipe.reuse.index import ReuseEntry, ReuseIndex
from airflow_mlpipe.reuse.lease import LeaseRecord, Leases, LeaseWatch

# Why a key has no live holder: never leased, released by a holder that wrote no entry (its step failed),
# expired by the holder's own timestamps, or seen unchanged by this waiter for longer than the ttl.
FreeReason = Literal["absent", "released", "expired", "stale"]


@dataclass(frozen=True)
class KeyState:
    key: str
    status: Literal["ready", "held", "free"]
    entry: ReuseEntry | None = None
    lease: LeaseRecord | None = None
    reason: FreeReason | None = None

    def event(self) -> dict[str, Any]:
        """The trigger's event payload for a state that ends the wait (primitives only)."""
        if self.status == "ready":
            assert self.entry is not None
            return {
                "status": "ready",
                "key": self.key,
                "step_run_id": self.entry.step_run_id,
                "seen_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            }
        payload: dict[str, Any] = {"status": "lease_expired", "key": self.key, "reason": self.reason}
        if self.lease is not None:
            payload["lease"] = self.lease.to_dict()
        return payload

    def describe(self) -> str:
        if self.status == "ready":
            assert self.entry is not None
            return f"reuse key {self.key}: ready, produced by step run {self.entry.step_run_id}"
        if self.status == "held":
            assert self.lease is not None
            who = self.lease.info.get("step_run_id") or self.lease.holder
            return f"reuse key {self.key}: being computed by {who} (lease generation {self.lease.generation})"
        return f"reuse key {self.key}: no entry and no live holder ({self.reason})"


def look(key: str, index: ReuseIndex, leases: Leases, watch: LeaseWatch | None = None) -> KeyState:
    entry = index.get(key)
    if entry is not None:
        return KeyState(key, "ready", entry=entry)
    record = leases.read(key)
    reason = _free_reason(record, leases, watch)
    if reason is None:
        return KeyState(key, "held", lease=record)
    # A producer writes its entry and then releases: between our two reads it may have done both.
    entry = index.get(key)
    if entry is not None:
        return KeyState(key, "ready", entry=entry)
    return KeyState(key, "free", lease=record, reason=reason)


def _free_reason(record: LeaseRecord | None, leases: Leases, watch: LeaseWatch | None) -> FreeReason | None:
    if record is None:
        return "absent"
    if record.released:
        return "released"
    if record.expired(leases.clock(), leases.clock_skew):
        return "expired"
    if watch is not None and watch.observe(record):
        return "stale"
    return None


def lease_from_event(event: Mapping[str, Any]) -> LeaseRecord | None:
    """The lease record a ``lease_expired`` event carries (what a take-over must still find unchanged)."""
    data = event.get("lease")
    if not isinstance(data, Mapping):
        return None
    try:
        return LeaseRecord.from_dict(data)
    except (ValueError, KeyError, TypeError):
        return None
