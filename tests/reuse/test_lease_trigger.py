"""``ReuseTrigger`` run for real (its async ``run()`` under asyncio) against a local default datastore."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.reuse.lease import Leases
from airflow_mlpipe.reuse.wait import KeyState, lease_from_event
from airflow_mlpipe.triggers import reuse as trigger_module
from airflow_mlpipe.triggers.reuse import ReuseTrigger
from tests.reuse.lease_helpers import entry_for, use_local_default

KEY = "ab" * 16


@pytest.fixture
def leases(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Leases:
    return Leases(use_local_default(monkeypatch, tmp_path))


def run(trigger: ReuseTrigger) -> list[TriggerEvent]:
    """Every event the trigger yields before its ``run()`` ends (a single-event trigger: one)."""

    async def collect() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def later(seconds: float, action: Any) -> threading.Thread:
    def act() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=act)
    thread.start()
    return thread


def test_an_entry_that_exists_is_ready_at_once(leases: Leases) -> None:
    ReuseIndex().put(entry_for(KEY, "producer"))
    assert [_timeless(e.payload) for e in run(ReuseTrigger(KEY, poll_interval=0.05))] == [
        {"status": "ready", "key": KEY, "step_run_id": "producer"}
    ]


def test_ready_once_the_holder_writes_its_entry(leases: Leases) -> None:
    lease = leases.acquire(KEY, "producer-try1", ttl=1.0)
    assert lease is not None

    def produce() -> None:
        with lease.keep_alive():
            time.sleep(0.5)
            ReuseIndex().put(entry_for(KEY, "producer"))

    thread = later(0, produce)
    events = run(ReuseTrigger(KEY, poll_interval=0.05))
    thread.join()
    assert [e.payload["status"] for e in events] == ["ready"]


def test_a_holder_that_releases_without_an_entry_frees_the_key(leases: Leases) -> None:
    lease = leases.acquire(KEY, "failing", ttl=60)
    assert lease is not None
    thread = later(0.3, lease.release)
    events = run(ReuseTrigger(KEY, poll_interval=0.05))
    thread.join()
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "lease_expired" and payload["reason"] == "released"
    assert lease_from_event(payload) == leases.read(KEY)


def test_no_lease_and_no_entry_is_reported_absent(leases: Leases) -> None:
    assert [e.payload for e in run(ReuseTrigger(KEY, poll_interval=0.05))] == [
        {"status": "lease_expired", "key": KEY, "reason": "absent"}
    ]


def test_a_holder_that_stops_beating_is_seen_stale_after_its_ttl(leases: Leases) -> None:
    assert leases.acquire(KEY, "crashed", ttl=0.3) is not None  # and never a heartbeat
    (event,) = run(ReuseTrigger(KEY, poll_interval=0.05))  # the default clock-skew margin is 60 s
    assert event.payload["status"] == "lease_expired" and event.payload["reason"] == "stale"
    assert event.payload["lease"]["holder"] == "crashed"


def test_a_lease_long_expired_by_its_own_timestamps_is_free_at_once(leases: Leases) -> None:
    assert leases.acquire(KEY, "crashed", ttl=0.05) is not None
    time.sleep(0.1)
    (event,) = run(ReuseTrigger(KEY, poll_interval=30, clock_skew=0))
    assert event.payload["reason"] == "expired"


def test_timeout_while_a_live_holder_computes(leases: Leases) -> None:
    lease = leases.acquire(KEY, "slow", ttl=0.4)
    assert lease is not None
    with lease.keep_alive():
        events = run(ReuseTrigger(KEY, poll_interval=0.05, timeout=0.5))
    assert [e.payload["status"] for e in events] == ["timeout"]


def test_waiting_for_a_producer_that_has_not_started(leases: Leases) -> None:
    thread = later(0.3, lambda: ReuseIndex().put(entry_for(KEY, "late")))
    events = run(ReuseTrigger(KEY, poll_interval=0.05, wait_for_producer=True))
    thread.join()
    assert [_timeless(e.payload) for e in events] == [{"status": "ready", "key": KEY, "step_run_id": "late"}]
    assert events[0].payload["seen_at"] > "2026"  # when the trigger saw the result (its log and the task's say it)


def test_a_store_that_cannot_be_read_ends_in_an_error_event(leases: Leases) -> None:
    (event,) = run(ReuseTrigger(KEY, datastore="no_such_datastore", poll_interval=0.01))
    assert event.payload["status"] == "error" and "no_such_datastore" in event.payload["message"]


def test_looks_run_off_the_event_loop(leases: Leases, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocking look waits for a coroutine on the loop: it can only finish if the loop is free meanwhile."""
    released_by_loop = threading.Event()

    def blocking_look(*args: Any) -> KeyState:
        if not released_by_loop.wait(timeout=10):
            raise AssertionError("the event loop was blocked while the trigger looked")
        return KeyState(KEY, "ready", entry=entry_for(KEY))

    monkeypatch.setattr(trigger_module, "look", blocking_look)

    async def main() -> list[TriggerEvent]:
        async def release() -> None:
            await asyncio.sleep(0.05)
            released_by_loop.set()

        releaser = asyncio.create_task(release())
        events = [event async for event in ReuseTrigger(KEY, poll_interval=0.05).run()]
        await releaser
        return events

    assert [e.payload["status"] for e in asyncio.run(main())] == ["ready"]


def test_serialize_holds_primitives_and_round_trips() -> None:
    trigger = ReuseTrigger(
        KEY, datastore="store", poll_interval=3, lease_ttl=40, clock_skew=5, timeout=100, wait_for_producer=True
    )
    classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    module, _, name = classpath.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    # the deadline is absolute: re-created later (a triggerer restart) it does not start counting again
    assert kwargs["deadline"] == pytest.approx(time.time() + 100, abs=5)
    assert again.deadline == trigger.deadline


def _timeless(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in ("seen_at", "previous_look_at")}


class SleepThenFire(BaseTrigger):
    """A stand-in for the pod operator's trigger: fires once after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{__name__}.SleepThenFire", {"seconds": self.seconds})

    async def run(self) -> Any:
        await asyncio.sleep(self.seconds)
        yield TriggerEvent({"status": "done"})


def test_the_triggerer_beats_without_grace_and_hands_back_with_it(leases: Leases) -> None:
    """The worker's last beat before deferring carries the hand-over grace; the triggerer's beats take it off, and
    its last beat, before a worker resumes the task, puts it back on."""
    from airflow_mlpipe.triggers.lease import LeaseKeepingTrigger

    lease = leases.acquire(KEY, "pod-holder", ttl=0.4)
    assert lease is not None
    lease.heartbeat(handoff=30)
    trigger = LeaseKeepingTrigger.around(SleepThenFire(0.6), lease, handoff=30)
    _classpath, kwargs = trigger.serialize()
    assert kwargs["handoff"] == 30.0
    trigger = LeaseKeepingTrigger(**kwargs)  # as the triggerer builds it
    trigger.trigger_id = 1
    seen: list[float] = []

    def look() -> None:
        time.sleep(0.35)
        seen.append(leases.read(KEY).handoff)  # type: ignore[union-attr]

    thread = later(0, look)
    assert [e.payload for e in run(trigger)] == [{"status": "done"}]
    thread.join()
    assert seen == [0.0]  # while the pod ran: ordinary beats
    last = leases.read(KEY)
    assert last is not None and last.handoff == 30.0 and not last.released and last.beat >= 3
