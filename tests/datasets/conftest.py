from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_azurite_datastore, make_s3_datastore


def use_as_default(monkeypatch: pytest.MonkeyPatch, store: Datastore) -> Datastore:
    """Make ``store`` the default datastore through the environment, as a deployment would."""
    extra = {"url": store.config.url, **dict(store.config.storage_options)}
    monkeypatch.setenv("AIRFLOW_CONN_MLPIPE_DEFAULT", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()
    return Datastore.get_default()


@pytest.fixture(params=["local", "azurite", "moto"])
def default_store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Datastore]:
    """The default datastore on a local folder, Azurite, or moto S3."""
    if request.param == "local":
        monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
        resolve.clear_cache()
        yield Datastore.get_default()
    elif request.param == "azurite":
        yield use_as_default(monkeypatch, make_azurite_datastore(request.getfixturevalue("azurite")))
    else:
        yield use_as_default(monkeypatch, make_s3_datastore(request.getfixturevalue("moto_s3")))


@pytest.fixture
def local_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Datastore:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    resolve.clear_cache()
    return Datastore.get_default()
