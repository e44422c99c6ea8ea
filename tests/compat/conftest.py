"""A private local default datastore per test, and no run context left over from another test."""

from __future__ import annotations

from pathlib import Path

import pytest

import airflow_mlpipe.run
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore


@pytest.fixture
def local_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Datastore:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    resolve.clear_cache()
    return Datastore.get_default()


@pytest.fixture(autouse=True)
def _no_current_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(airflow_mlpipe.run, "_current", None)
    monkeypatch.delenv("MLPIPE_RUN_CONTEXT", raising=False)
