"""Reuse index entries are sealed like registry records: an entry a step script wrote or changed, or one copied
under another key, is a miss (the step computes), never a hit on outputs its key does not name. On local, Azurite
and moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_mlpipe.datasets.seal import SEAL_FIELD, SEAL_KEY_ENV
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_azurite_datastore, make_s3_datastore
from tests.reuse.lease_helpers import entry_for

KEY, OTHER = "a" * 32, "b" * 32


@pytest.fixture(params=["local", "azurite", "moto"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Datastore]:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    resolve.clear_cache()
    if request.param == "local":
        yield Datastore.get_default()
    elif request.param == "azurite":
        yield make_azurite_datastore(request.getfixturevalue("azurite"))
    else:
        yield make_s3_datastore(request.getfixturevalue("moto_s3"))


def _stored(store: Datastore, key: str) -> dict:
    return json.loads(store.read_bytes(ReuseIndex.path(key)))


def test_an_entry_is_read_back_with_its_seal(store: Datastore) -> None:
    index = ReuseIndex(store)
    index.put(entry_for(KEY, "dag.run.producer"))
    assert _stored(store, KEY)[SEAL_FIELD]["alg"] == "sha256"
    entry = index.get(KEY)
    assert entry is not None and entry.step_run_id == "dag.run.producer"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda data: {**data, "step_run_id": "dag.run.victim"}, id="rewritten"),
        pytest.param(lambda data: {k: v for k, v in data.items() if k != SEAL_FIELD}, id="unsealed"),
        pytest.param(lambda data: {**data, SEAL_FIELD: {"alg": "sha256", "value": "0" * 64}}, id="forged-seal"),
        pytest.param(lambda data: {**data, SEAL_FIELD: "x"}, id="malformed-seal"),
    ],
)
def test_a_changed_or_unsealed_entry_is_a_miss(
    store: Datastore, tamper: object, caplog: pytest.LogCaptureFixture
) -> None:
    ReuseIndex(store).put(entry_for(KEY))
    store.write_bytes(ReuseIndex.path(KEY), json.dumps(tamper(_stored(store, KEY))).encode())  # type: ignore[operator]
    assert ReuseIndex(store).get(KEY) is None
    assert f"ignoring the reuse index entry {KEY}" in caplog.text


def test_an_entry_copied_under_another_key_is_a_miss(store: Datastore, caplog: pytest.LogCaptureFixture) -> None:
    """The poisoning that matters: key B's file holding key A's (validly sealed) entry."""
    ReuseIndex(store).put(entry_for(KEY))
    store.write_bytes(ReuseIndex.path(OTHER), store.read_bytes(ReuseIndex.path(KEY)))
    assert ReuseIndex(store).get(OTHER) is None
    assert f"it is the entry of key {KEY}, copied under another name" in caplog.text
    assert ReuseIndex(store).get(KEY) is not None


def test_with_the_registry_key_an_entry_sealed_without_it_is_a_miss(
    store: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ReuseIndex(store).put(entry_for(KEY))  # sealed with a plain hash: what code without the key can write
    monkeypatch.setenv(SEAL_KEY_ENV, "a-deployment-secret")
    assert ReuseIndex(store).get(KEY) is None
    ReuseIndex(store).put(entry_for(KEY))
    assert _stored(store, KEY)[SEAL_FIELD]["alg"] == "hmac-sha256"
    assert ReuseIndex(store).get(KEY) is not None
