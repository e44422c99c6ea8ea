"""A single-file copy onto a destination ending in '/' goes into that folder under the file's own name, as ``cp``
and ``rsync`` do (it used to write a file named after the folder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlpipe.exceptions import ReservedPathError
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.transfer import transfer
from tests.reuse.reuse_helpers import mlpipe_in_process
from tests.storage.conftest import MakeStore


@pytest.mark.parametrize("backend", ["local", "azurite", "moto"])
def test_a_file_copied_onto_a_folder_path_goes_into_it(make_store: MakeStore, backend: str) -> None:
    store = make_store(backend, "lake")
    store.write_bytes("data/a.csv", b"a\n1\n")

    result = transfer(store, "data/a.csv", store, "out3/", kind="file")

    assert result.destination == store.uri("out3/a.csv")
    assert store.read_bytes("out3/a.csv") == b"a\n1\n" and not store.isfile("out3")
    assert transfer(store, "data/a.csv", store, "out3/", kind="file").up_to_date
    assert transfer(store, "data/a.csv", store, "out3/b.csv", kind="file").files_copied == 1  # no '/': that name


def test_the_folder_is_checked_as_a_destination_path(make_store: MakeStore) -> None:
    store = make_store("local", "lake")
    store.write_bytes("data/a.csv", b"a\n1\n")
    with pytest.raises(ReservedPathError, match=r"^transfer destination: .*'_mlpipe\./a\.csv' is inside '_mlpipe\./'"):
        transfer(store, "data/a.csv", store, "_mlpipe./", kind="file")
    assert set(store.list("", recursive=True)) == {"data/a.csv"}


@pytest.mark.parametrize("destination", ["lake:out3/", "mlpipe://datastores/lake/paths/out3/"])
def test_cli_file_copy_onto_a_folder_path_goes_into_it(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch, destination: str
) -> None:
    store = make_store("local", "lake")
    store.write_bytes("data/a.csv", b"a\n1\n")
    extra = {"url": store.config.url}
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()

    code, out = mlpipe_in_process("transfer", "lake:data/a.csv", destination, "--file")

    assert code == 0, out
    assert (Path(store.root) / "out3").is_dir() and (Path(store.root) / "out3/a.csv").read_text() == "a\n1\n"


def _named(monkeypatch: pytest.MonkeyPatch, **stores: Datastore) -> None:
    for name, store in stores.items():
        extra = {"url": store.config.url}
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()


@pytest.mark.parametrize("destination", ["lake:/", "lake://", "mlpipe://datastores/lake/paths/"])
def test_cli_file_copy_onto_the_root_with_a_slash_goes_into_the_root(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch, destination: str
) -> None:
    """``lake:/`` is the datastore's root folder, as ``lake:`` is (it used to be the absolute path '/a.csv')."""
    source, lake = make_store("local", "src"), make_store("local", "lake")
    source.write_bytes("data/a.csv", b"a\n1\n")
    _named(monkeypatch, SRC=source, LAKE=lake)

    code, out = mlpipe_in_process("transfer", "src:data/a.csv", destination, "--file")

    assert code == 0, out
    assert sorted(p.name for p in Path(lake.root).iterdir()) == ["a.csv"]
    assert (Path(lake.root) / "a.csv").read_text() == "a\n1\n"


def test_cli_folder_copy_of_and_onto_the_root_with_a_slash(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, lake = make_store("local", "src"), make_store("local", "lake")
    source.write_bytes("data/a.csv", b"a\n1\n")
    _named(monkeypatch, SRC=source, LAKE=lake)

    code, out = mlpipe_in_process("transfer", "src:/", "lake:/")

    assert code == 0, out
    assert lake.read_bytes("data/a.csv") == b"a\n1\n" and lake.is_complete("")
