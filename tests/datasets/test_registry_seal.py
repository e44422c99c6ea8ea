"""Registry records that a registration did not write, or that were changed after, are refused and never served:
on local, Azurite and moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_mlpipe import Dataset
from airflow_mlpipe.datasets.registry import REGISTRY_ROOT, DatasetRegistry
from airflow_mlpipe.datasets.seal import SEAL_FIELD, SEAL_KEY_ENV, sealed_bytes
from airflow_mlpipe.exceptions import TamperedRecordError
from airflow_mlpipe.storage.datastore import Datastore


def _register(store: Datastore, name: str, text: str) -> int:
    store.write_text(f"data/{name}/{text}.csv", f"v\n{text}\n")
    registered = Dataset.File.from_files((store, f"data/{name}/{text}.csv")).register(name)
    return registered.version or 0


def _path(name: str, version: int) -> str:
    return f"{REGISTRY_ROOT}/{name}/{version}.json"


def _body(store: Datastore, name: str, version: int) -> dict[str, Any]:
    """A stored record without its seal."""
    return {k: v for k, v in store.read_json(_path(name, version)).items() if k != SEAL_FIELD}


def _latest(name: str) -> int | None:
    """The latest version as a step's input sees it (``Dataset.get_by_name`` reads the registry on first use)."""
    return Dataset.get_by_name(name).version


def _rewrite(store: Datastore, name: str, version: int, data: bytes) -> None:
    """What a step script holding the datastore's credentials can do: replace a record's bytes outright."""
    store.write_bytes(_path(name, version), data)


def test_a_rewritten_record_is_refused(default_store: Datastore) -> None:
    assert _register(default_store, "rewritten", "a") == 1
    stored = default_store.read_json(_path("rewritten", 1))
    stored["description"] = "nothing to see"  # the seal left as it was
    _rewrite(default_store, "rewritten", 1, json.dumps(stored).encode())

    for lookup in (lambda: _latest("rewritten"), lambda: DatasetRegistry().get("rewritten", 1)):
        with pytest.raises(TamperedRecordError) as caught:
            lookup()
        message = str(caught.value)
        assert _path("rewritten", 1) in message and repr(default_store.name) in message
        assert "changed after it was registered" in message and "not served" in message


def test_a_record_no_registration_made_is_refused(default_store: Datastore) -> None:
    """A script creates the next version's record: lookups of the latest version refuse it; registering refuses
    to build on it; the versions a registration made are still served."""
    _register(default_store, "forged", "a")
    forged = {**_body(default_store, "forged", 1), "version": 2, "description": "forged"}
    assert default_store.create_if_absent(_path("forged", 2), json.dumps(forged).encode())

    with pytest.raises(TamperedRecordError, match=r"version 2: .* no seal, so no registration wrote it"):
        _latest("forged")
    with pytest.raises(TamperedRecordError, match="no seal"):
        _register(default_store, "forged", "b")
    assert Dataset.get_by_name("forged", version=1).version == 1


def test_a_record_that_names_another_dataset_or_version_is_refused(default_store: Datastore) -> None:
    """A sealed record copied under another name (or number) disagrees with its file name."""
    _register(default_store, "source", "a")
    _register(default_store, "target", "a")
    default_store.write_bytes(_path("target", 2), default_store.read_bytes(_path("source", 1)))

    with pytest.raises(TamperedRecordError) as caught:
        DatasetRegistry().get("target", 2)
    assert "it names dataset 'source' version 1, not the file's" in str(caught.value)


def test_a_record_whose_manifest_disagrees_with_its_digest_is_refused(default_store: Datastore) -> None:
    """Entries changed and sealed again by code that knows the seal (no key set): the manifest's digest, files and
    bytes, kept with it, still give it away."""
    _register(default_store, "swapped", "a")
    body = _body(default_store, "swapped", 1)
    body["manifest"]["entries"][0]["size"] += 1
    _rewrite(default_store, "swapped", 1, sealed_bytes(body))

    with pytest.raises(TamperedRecordError, match=r"its manifest disagrees with its entries: bytes 4 .*, digest '"):
        _latest("swapped")


def test_with_a_registry_key_a_record_forged_with_the_plain_seal_is_refused(
    default_store: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the workers set MLPIPE_REGISTRY_KEY (kept from step scripts), a forger that knows the format but not
    the key is refused; a reader without the key (a step's runner) still checks the rest."""
    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")
    _register(default_store, "keyed", "a")
    assert default_store.read_json(_path("keyed", 1))[SEAL_FIELD]["alg"] == "hmac-sha256"
    monkeypatch.delenv(SEAL_KEY_ENV)
    forged = {**_body(default_store, "keyed", 1), "version": 2}
    default_store.write_bytes(_path("keyed", 2), sealed_bytes(forged))  # sealed without the key
    assert DatasetRegistry().get("keyed", 1).version == 1  # no key here: the HMAC cannot be checked, the rest is

    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")
    assert DatasetRegistry().get("keyed", 1).version == 1
    with pytest.raises(TamperedRecordError, match=f"sealed without the registry key \\({SEAL_KEY_ENV}\\)"):
        _latest("keyed")
    monkeypatch.setenv(SEAL_KEY_ENV, "another-secret")
    with pytest.raises(TamperedRecordError, match="changed after it was registered"):
        DatasetRegistry().get("keyed", 1)


def test_listings_skip_a_refused_record_with_a_warning(
    default_store: Datastore, caplog: pytest.LogCaptureFixture
) -> None:
    _register(default_store, "listed", "a")
    _register(default_store, "listed", "b")
    forged = {**_body(default_store, "listed", 1), "version": 3}
    default_store.write_bytes(_path("listed", 3), json.dumps(forged).encode())

    registry = DatasetRegistry()
    found = [registry.listed("listed", v) for v in registry.versions("listed")]
    assert [r.version if r else None for r in found] == [1, 2, None]
    assert registry.listed("listed") is None  # the latest is the refused one: not served as the latest either
    assert "skipped in the listing: dataset 'listed' version 3" in caplog.text


def test_a_registry_from_before_seals_is_sealed_once_then_unsealed_records_are_refused(
    default_store: Datastore, caplog: pytest.LogCaptureFixture
) -> None:
    """Upgrading: records older code wrote carry no seal. The first read (or registration) seals those that agree
    with their file and manifest, once, and marks the registry sealed; an unsealed record met after is refused."""
    import airflow_mlpipe.datasets.registry as registry

    _register(default_store, "old", "a")
    _register(default_store, "old", "b")
    for version in (1, 2):  # as older code left them
        _rewrite(default_store, "old", version, json.dumps(_body(default_store, "old", version)).encode())
    default_store.delete(registry.SEALED_MARKER)
    registry._sealed.clear()
    bad = {**_body(default_store, "old", 1), "name": "other"}  # disagrees with its file: never sealed
    _rewrite(default_store, "oddity", 1, json.dumps(bad).encode())

    assert _latest("old") == 2
    assert DatasetRegistry().get("old", 1).version == 1
    assert "sealed 2 dataset registry records written before records carried seals" in caplog.text
    assert default_store.read_json(registry.SEALED_MARKER)["records"] == 2
    assert SEAL_FIELD in default_store.read_json(_path("old", 1))
    with pytest.raises(TamperedRecordError, match="it names dataset 'other'"):
        DatasetRegistry().get("oddity", 1)

    forged = {**_body(default_store, "old", 2), "version": 3}  # written after the migration: refused
    _rewrite(default_store, "old", 3, json.dumps(forged).encode())
    with pytest.raises(TamperedRecordError, match="no seal, so no registration wrote it"):
        DatasetRegistry().get("old", 3)
