"""Fixtures for the fingerprint tests."""

from __future__ import annotations

import pytest

from airflow_mlpipe.fingerprint.statcache import StatCache
from tests.fingerprint.helpers import LaterClock


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory) -> StatCache:
    """A stat cache of the test's own, outside ``tmp_path`` (which tests scan), with a clock a minute ahead."""
    return StatCache(tmp_path_factory.mktemp("statcache") / "stat.sqlite3", clock=LaterClock())
