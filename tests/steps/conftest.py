"""The default datastore of the step tests: a local folder of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore


@pytest.fixture
def local_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Datastore:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    resolve.clear_cache()
    return Datastore.get_default()
