"""A dataset version registered by hand from a transfer's copy keeps its files: later transfers of the same source
into the copy neither remove nor replace a file the version names (on local, Azurite and moto)."""

from __future__ import annotations

import pytest

from airflow_mlpipe import Dataset
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore
from airflow_mlpipe.storage.listing import JOURNAL_NAME
from airflow_mlpipe.storage.transfer import TransferDestinationExistsError, TransferExtraFilesError, transfer

# (dataset path, files of the copy the version names)
PATHS = [
    pytest.param("copies/raw", ("a.txt", "sub/b.txt"), id="the-copy"),
    pytest.param("copies", ("a.txt", "sub/b.txt"), id="a-folder-above"),
    pytest.param("copies/raw/sub/b.txt", ("sub/b.txt",), id="one-file"),
    pytest.param("copies/*/sub/*.txt", ("sub/b.txt",), id="a-glob-below"),
    pytest.param("copies/raw/sub", ("sub/b.txt",), id="a-folder-inside"),
]


def _copy(store: Datastore) -> None:
    store.write_bytes("in/a.txt", b"a")
    store.write_bytes("in/sub/b.txt", b"b")
    store.write_bytes("in/keep.txt", b"k")  # an object store's folder ends with its last file
    transfer(store, "in", store, "copies/raw")


@pytest.mark.parametrize(("path", "named"), PATHS)
def test_a_version_registered_from_a_copy_keeps_its_files(default_store: Datastore, path: str, named: tuple) -> None:
    store = default_store
    _copy(store)
    version = Dataset.File.from_files(path=(store, path)).register("raw")
    assert store.read_marker("copies/raw")["registered"] == {"name": "raw", "version": 1}
    for rel in named:
        store.delete(f"in/{rel}")
    with pytest.raises(TransferExtraFilesError, match=r"dataset 'raw' version 1, which names them: they are never"):
        transfer(store, "in", store, "copies/raw")
    for rel in named:
        store.write_bytes(f"in/{rel}", b"changed")
    with pytest.raises(TransferDestinationExistsError, match="never replaced, whatever overwrite=True says"):
        transfer(store, "in", store, "copies/raw", overwrite=True)
    assert len(Dataset.get_by_name("raw").download()) == len(version.to_path())  # every file as registered


def test_a_copy_a_version_does_not_reach_is_still_mirrored(local_default: Datastore) -> None:
    store = local_default
    _copy(store)
    store.write_bytes("copies/other.txt", b"o")
    Dataset.File.from_files(path=(store, "copies/other.txt")).register("other")
    assert "registered" not in store.read_marker("copies/raw")
    store.delete("in/sub/b.txt")
    assert transfer(store, "in", store, "copies/raw").files_removed == 1


def test_a_registered_copy_keeps_its_registration_through_added_files_and_a_killed_run(
    local_default: Datastore,
) -> None:
    store = local_default
    _copy(store)
    Dataset.File.from_files(path=(store, "copies/raw")).register("raw")
    store.write_bytes("in/c.txt", b"c")
    assert transfer(store, "in", store, "copies/raw").files_copied == 1  # a file the source added
    assert store.read_marker("copies/raw")["registered"] == {"name": "raw", "version": 1}
    # a later run killed after withdrawing the marker: its journal still carries the registration
    marker = store.read_marker("copies/raw")
    store.clear_complete("copies/raw")
    journal = {
        "source": store.uri("in"),
        "own_files": ["a.txt", "c.txt", "keep.txt", "sub/b.txt"],
        "registered": marker["registered"],
    }
    store.write_json(f"copies/raw/{JOURNAL_NAME}", journal)
    store.delete("in/a.txt")
    with pytest.raises(TransferExtraFilesError, match=r"dataset 'raw' version 1, which names them"):
        transfer(store, "in", store, "copies/raw")
    assert store.read_bytes("copies/raw/a.txt") == b"a"
    store.write_bytes("in/a.txt", b"a")
    transfer(store, "in", store, "copies/raw")  # the rerun finishes: marked complete, still registered
    assert store.read_marker("copies/raw")["registered"] == {"name": "raw", "version": 1}
    assert COMPLETE_MARKER in {p.rsplit("/", 1)[-1] for p in store.list("copies/raw")}
