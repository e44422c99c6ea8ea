"""The default datastore of the gc tests: a local folder of the test's own, and a maker of step runs in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.gc.helpers import Runs


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Datastore:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    resolve.clear_cache()
    return Datastore.get_default()


@pytest.fixture
def runs(store: Datastore, tmp_path: Path) -> Runs:
    return Runs(store, tmp_path)
