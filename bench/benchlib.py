"""What the benchmarks share: the machine's load, and a median of timed calls."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
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
