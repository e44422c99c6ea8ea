"""Reuse index entries are sealed like registry records: an entry a step script wrote or changed, or one copied
under another key, is a miss (the step computes), never a hit on outputs its key does not name. On local, Azurite
and moto."""

from __future__ import annotations

import json
import time
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


def test_entries_older_code_wrote_are_trusted_and_sealed_in_place(store: Datastore) -> None:
    """Upgrading must not recompute every step: an entry without a seal that the store says was written before
    the index began to be sealed (its marker's time, by the store's own clock) is read, and sealed."""
    legacy = entry_for(KEY, "dag.run.before")
    store.write_json(ReuseIndex.path(KEY), legacy.to_dict())  # as older code wrote it
    assert ReuseIndex(store).get(KEY) == legacy  # nothing sealed here yet: every entry is an older one
    assert _stored(store, KEY)[SEAL_FIELD]["alg"] == "sha256"  # sealed in place (this also marked the index)

    store.write_json(ReuseIndex.path(OTHER), entry_for(OTHER).to_dict())  # unsealed, after the marker
    assert ReuseIndex(store).get(OTHER) is None


def test_an_unsealed_entry_from_before_the_marker_is_read_one_from_after_is_not(store: Datastore) -> None:
    store.write_json(ReuseIndex.path(KEY), entry_for(KEY, "dag.run.before").to_dict())
    time.sleep(1.1)  # object stores keep whole seconds
    ReuseIndex(store).put(entry_for("d" * 32))  # the first sealed entry: the index is sealed from now on
    store.write_json(ReuseIndex.path(OTHER), entry_for(OTHER).to_dict())
    assert ReuseIndex(store).get(KEY) is not None
    assert ReuseIndex(store).get(OTHER) is None
