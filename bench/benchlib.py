"""What the benchmarks share: the machine's load, and a median of timed calls."""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def load() -> str:
    """The load averages (1, 5, 15 minutes), printed next to every figure: the machines are shared."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def timed(fn: Callable[[], Any], reps: int) -> float:
    """The median wall time of ``fn`` in milliseconds."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def stores(only: str | None, work: Path, servers: dict[str, Any]) -> Iterator[tuple[str, Callable[[], Any]]]:
    """(label, a maker of a fresh, empty datastore) for each store a benchmark runs on: a local folder, Azurite
    (started on first use), and moto's S3 only when asked for. ``servers`` keeps the emulators, to stop them."""
    from airflow_mlpipe.storage.datastore import Datastore
    from tests.emulators import Azurite, MotoS3

    def fresh(server: Any, url: str, options: dict[str, Any]) -> Datastore:
        if server.proc is None:
            server.start()
        store = Datastore("bench", url, options)
        store.fs.mkdir(store.root.split("/", 1)[0])
        return store

    if only in (None, "local"):
        yield "local", lambda: Datastore("bench", (work / uuid.uuid4().hex).as_uri())
    if only in (None, "azurite"):
        azurite = servers.setdefault("azurite", Azurite())
        yield (
            "azurite",
            lambda: fresh(
                azurite, f"az://c{uuid.uuid4().hex[:12]}/root", {"connection_string": azurite.connection_string}
            ),
        )
    if only == "moto":
        moto = servers.setdefault("moto", MotoS3())
        yield "moto", lambda: fresh(moto, f"s3://b{uuid.uuid4().hex[:12]}/root", moto.storage_options())
