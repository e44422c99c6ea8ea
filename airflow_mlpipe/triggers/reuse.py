"""``ReuseTrigger``: waits in the triggerer, holding no worker slot, until a reuse key is ready or free."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_mlpipe.reuse.dedup import DEFAULT_POLL_INTERVAL
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.reuse.lease import DEFAULT_CLOCK_SKEW, Leases, LeaseWatch, check_key
from airflow_mlpipe.reuse.wait import KeyState, look
from airflow_mlpipe.storage.datastore import Datastore

# Consecutive failed looks (store unreachable) before the trigger gives up with an "error" event.
MAX_FAILED_LOOKS = 5


class ReuseTrigger(BaseTrigger):
    """Polls the reuse index and the key's lease every ``poll_interval`` seconds and yields one event:

    - ``{"status": "ready", "key", "step_run_id"}``: the index has an entry for the key;
    - ``{"status": "lease_expired", "key", "reason", "lease"?}``: no entry and no live holder (``reason``:
      ``absent``, ``released``, ``expired`` by the holder's timestamps, or ``stale``: its record unchanged for
      longer than its ttl); the waiter should compute the key itself, taking over ``lease``;
    - ``{"status": "timeout", "key", "waited"}``: ``timeout`` seconds passed first;
    - ``{"status": "error", "key", "message"}``: the store could not be read several times in a row.

    :param key: the reuse key.
    :param datastore: the datastore holding the index and leases (default: the default datastore).
    :param lease_ttl: judge a holder dead when its record has not changed for this long (default: the ttl
        written in the record by its holder).
    :param clock_skew: the margin allowed between the holder's clock and the triggerer's.
    :param timeout: give up after this many seconds (measured from when the task deferred).
    :param wait_for_producer: keep waiting while no run is computing the key (instead of reporting it free):
        for a sensor that waits for a step which has not started yet.
    """

    def __init__(
        self,
        key: str,
        *,
        datastore: str | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        lease_ttl: float | None = None,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        timeout: float | None = None,
        deadline: float | None = None,
        wait_for_producer: bool = False,
    ) -> None:
        super().__init__()
        self.key = check_key(key)
        self.datastore = datastore
        self.poll_interval = float(poll_interval)
        self.lease_ttl = None if lease_ttl is None else float(lease_ttl)
        self.clock_skew = float(clock_skew)
        self.timeout = None if timeout is None else float(timeout)
        # An absolute deadline survives a triggerer restart, which re-creates the trigger from serialize().
        if deadline is None and self.timeout is not None:
            deadline = time.time() + self.timeout
        self.deadline = deadline
        self.wait_for_producer = bool(wait_for_producer)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "key": self.key,
                "datastore": self.datastore,
                "poll_interval": self.poll_interval,
                "lease_ttl": self.lease_ttl,
                "clock_skew": self.clock_skew,
                "timeout": self.timeout,
                "deadline": self.deadline,
                "wait_for_producer": self.wait_for_producer,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        looks = self._looks()
        while True:
            # datastore calls block (fsspec, SDK clients): keep them off the triggerer's event loop
            event = await asyncio.to_thread(next, looks)
            if event is not None:
                yield TriggerEvent(event)
                return
            await asyncio.sleep(self.poll_interval)

    def wait_in_worker(self) -> dict[str, Any]:
        """The same wait, here and blocking (a step with ``deferrable=False``): the event ``run`` would yield."""
        for event in self._looks():
            if event is not None:
                return event
            time.sleep(self.poll_interval)
        raise AssertionError("unreachable: _looks never ends")

    def _looks(self) -> Iterator[dict[str, Any] | None]:
        """One look at the key per item: the event that ends the wait, or None to look again later."""
        watch = LeaseWatch(self.lease_ttl)
        started = time.monotonic()
        failures = 0
        previous_look: str | None = None  # when the last look that did not end the wait began
        while True:
            look_began = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
            try:
                state: KeyState | None = self._look(watch)
                failures = 0
            except Exception as exc:
                failures += 1
                self.log.warning("reuse key %s: could not look (%d/%d): %s", self.key, failures, MAX_FAILED_LOOKS, exc)
                if failures >= MAX_FAILED_LOOKS:
                    yield {"status": "error", "key": self.key, "message": str(exc)}
                    return
                state = None
            if state is not None and self._ends_wait(state):
                self.log.info("%s", state.describe())
                event = state.event()
                if previous_look is not None:
                    event["previous_look_at"] = previous_look
                yield event
                return
            if self.deadline is not None and time.time() >= self.deadline:
                yield {"status": "timeout", "key": self.key, "waited": round(time.monotonic() - started, 3)}
                return
            previous_look = look_began
            yield None

    def _ends_wait(self, state: KeyState) -> bool:
        return state.status == "ready" or (state.status == "free" and not self.wait_for_producer)

    def _look(self, watch: LeaseWatch) -> KeyState:
        store = Datastore.get(self.datastore) if self.datastore else Datastore.get_default()
        return look(self.key, ReuseIndex(store), Leases(store, clock_skew=self.clock_skew), watch)
