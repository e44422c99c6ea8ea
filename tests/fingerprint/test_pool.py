"""How many worker processes: asked for, or one per idle CPU."""

from __future__ import annotations

import os

import pytest

from airflow_mlpipe.fingerprint import pool


@pytest.mark.parametrize(
    ("load", "cpus", "expected"),
    [
        pytest.param(0.1, 2, 2, id="idle-machine-uses-every-cpu"),
        pytest.param(1.0, 2, 2, id="our-own-load-counts-once"),
        pytest.param(4.6, 2, 1, id="busy-machine-one-process"),
        pytest.param(0.0, 64, pool.MAX_WORKERS, id="capped"),
    ],
)
def test_worker_count_follows_idle_cpus(monkeypatch: pytest.MonkeyPatch, load: float, cpus: int, expected: int) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert pool.worker_count(None) == expected


def test_an_explicit_count_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (50.0, 50.0, 50.0))
    assert pool.worker_count(3) == 3
    assert pool.worker_count(0) == 1
