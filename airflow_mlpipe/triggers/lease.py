"""``LeaseKeepingTrigger``: waits for another trigger (the pod operator's) in the triggerer, and keeps the step's
lease on its reuse key alive meanwhile.

A deferrable pod step holds no worker while its pod runs, so nothing on a worker heartbeats its lease; without
this, identical steps waiting elsewhere would judge the holder dead after one lease ttl and start pods of their
own. The triggerer heartbeats it instead, and the event of the wrapped trigger resumes the task as if it had
deferred to that trigger itself. The lease is released by the task when it finishes the step.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_mlpipe.exceptions import LeaseLostError
from airflow_mlpipe.reuse.lease import BEATS_PER_TTL, Lease, Leases
from airflow_mlpipe.storage.datastore import Datastore


class LeaseKeepingTrigger(BaseTrigger):
    """:param trigger: the wrapped trigger as its ``serialize()`` gives it: ``(classpath, kwargs)``.
    :param key: the reuse key; ``holder`` and ``generation``: the lease record this step holds.
    :param interval: seconds between heartbeats (default: the lease's ttl / 4, read from its record).
    :param handoff: the grace the last beat adds, while a worker picks the resumed task up (default: 0).
    """

    def __init__(
        self,
        *,
        trigger: Sequence[Any],
        key: str,
        holder: str,
        generation: int,
        datastore: str | None = None,
        interval: float | None = None,
        handoff: float = 0.0,
    ) -> None:
        super().__init__()
        classpath, kwargs = trigger
        self.wrapped: tuple[str, dict[str, Any]] = (str(classpath), dict(kwargs))
        self.key, self.holder, self.generation = key, holder, int(generation)
        self.datastore = datastore
        self.interval = None if interval is None else float(interval)
        self.handoff = float(handoff)
        module, _, name = self.wrapped[0].rpartition(".")
        self.inner: BaseTrigger = getattr(importlib.import_module(module), name)(**self.wrapped[1])

    @classmethod
    def around(cls, trigger: BaseTrigger, lease: Lease, *, handoff: float = 0.0) -> LeaseKeepingTrigger:
        return cls(
            trigger=trigger.serialize(),
            key=lease.key,
            holder=lease.holder,
            generation=lease.record.generation,
            datastore=lease.leases.store.name,
            handoff=handoff,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "trigger": list(self.wrapped),
                "key": self.key,
                "holder": self.holder,
                "generation": self.generation,
                "datastore": self.datastore,
                "interval": self.interval,
                "handoff": self.handoff,
            },
        )

    # The triggerer hands the task instance to the trigger it runs; the wrapped one needs it as well.
    @BaseTrigger.task_instance.setter  # type: ignore[attr-defined]
    def task_instance(self, value: Any) -> None:
        BaseTrigger.task_instance.fset(self, value)  # type: ignore[attr-defined]
        inner = getattr(self, "inner", None)
        if inner is not None:
            inner.task_instance = value

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self.inner.trigger_id = self.trigger_id
        beating = asyncio.create_task(self._keep_alive())
        try:
            async for event in self.inner.run():
                beating.cancel()
                # A last beat, with the hand-over grace: the lease then lives a full ttl and the grace more while a
                # worker picks the task up to finish it.
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._beat, self.handoff)
                yield event
                return
        finally:
            beating.cancel()

    async def cleanup(self) -> None:
        await self.inner.cleanup()

    async def on_kill(self) -> None:
        on_kill = getattr(self.inner, "on_kill", None)
        if on_kill is not None:
            await on_kill()

    async def _keep_alive(self) -> None:
        interval = self.interval
        while True:
            try:
                record = await asyncio.to_thread(self._beat)
            except LeaseLostError as exc:
                self.log.warning("%s; identical steps elsewhere may compute it too", exc)
                return
            except Exception as exc:  # a store hiccup: the next beat tries again
                self.log.warning("lease %s: heartbeat failed (%s)", self.key, exc)
                record = None
            if interval is None and record is not None:
                interval = record.ttl / BEATS_PER_TTL
            await asyncio.sleep(interval or 30.0)

    def _beat(self, handoff: float = 0.0) -> Any:
        store = Datastore.get(self.datastore) if self.datastore else Datastore.get_default()
        lease = Leases(store).adopt(self.key, holder=self.holder)
        if lease is None or lease.record.generation != self.generation:
            raise LeaseLostError(f"lease {self.key!r} is no longer held by {self.holder!r}")
        return lease.heartbeat(handoff=handoff)
