"""A transfer leaves exactly the source's files at its destination: its own folder is mirrored (files the source
dropped are removed first), a folder holding someone else's files is refused before anything is written. Also the
transfer's error wording: each names its side, the full path, and the fix in the caller's own options."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from airflow_mlpipe.exceptions import PathOutsideDatastoreError
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore
from airflow_mlpipe.storage.listing import JOURNAL_NAME
from airflow_mlpipe.storage.transfer import (
    TransferDestinationExistsError,
    TransferExtraFilesError,
    TransferKindError,
    transfer,
)
from tests.storage.conftest import MakeStore

BACKENDS = ["local", "memory", "azurite", "moto"]


def _files(store: Datastore, folder: str) -> dict[str, bytes]:
    prefix = f"{folder}/"
    return {p[len(prefix) :]: store.read_bytes(p) for p in store.list(folder, recursive=True)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_own_destination_is_mirrored(make_store: MakeStore, backend: str) -> None:
    store = make_store(backend, "lake")
    for name in ("a.txt", "b.txt", "sub/c.txt", "sub/deeper/d.txt"):
        store.write_bytes(f"src1/{name}", name.encode())
    transfer(store, "src1", store, "m1")
    for name in ("b.txt", "sub/c.txt", "sub/deeper/d.txt"):
        store.delete(f"src1/{name}")

    result = transfer(store, "src1", store, "m1")

    assert (result.files_removed, result.extra_files, result.files_copied) == (3, 3, 0)
    assert set(_files(store, "m1")) == {"a.txt", COMPLETE_MARKER}
    assert set(store.read_marker("m1")["transfer"]["files"]) == {"a.txt"}
    if backend == "local":
        assert not Path(store.full_path("m1/sub")).exists(), "a folder left empty by the mirror is removed"
    assert transfer(store, "src1", store, "m1").up_to_date


def test_unfinished_run_of_the_same_transfer_is_mirrored(make_store: MakeStore) -> None:
    store = make_store("local", "lake")
    store.write_bytes("src1/a.txt", b"a")
    store.write_bytes("m1/b.txt", b"left by a run that died")
    store.write_json(f"m1/{JOURNAL_NAME}", {"source": store.uri("src1"), "own_files": ["a.txt", "b.txt"]})

    transfer(store, "src1", store, "m1")

    assert set(_files(store, "m1")) == {"a.txt", COMPLETE_MARKER}


def test_a_journal_that_lists_no_files_removes_none(make_store: MakeStore) -> None:
    """A journal naming the source (a forged one, or one from before journals listed their files) claims no file."""
    store = make_store("local", "lake")
    store.write_bytes("src1/a.txt", b"a")
    store.write_bytes("victim/precious.csv", b"keep me")
    store.write_json(f"victim/{JOURNAL_NAME}", {"source": store.uri("src1")})

    with pytest.raises(TransferExtraFilesError, match=r"no earlier transfer of .*src1 wrote there \('precious.csv'\)"):
        transfer(store, "src1", store, "victim")

    assert store.read_bytes("victim/precious.csv") == b"keep me"
    assert not store.exists("victim/a.txt")


@pytest.mark.parametrize("backend", ["local", "memory"])
def test_a_nested_folder_of_another_transfer_is_not_mirrored(make_store: MakeStore, backend: str) -> None:
    store = make_store(backend, "lake")
    store.write_bytes("src1/a.txt", b"a")
    store.write_bytes("src1/sub/q.txt", b"src1's q")
    store.write_bytes("src2/q.txt", b"src2's q")
    transfer(store, "src1", store, "m1")
    store.delete("src1/sub/q.txt")
    store.write_bytes("src2/q.txt", b"src1's q")  # the same bytes: the nested transfer keeps the file as it is
    transfer(store, "src2", store, "m1/sub")
    before = _files(store, "m1")

    with pytest.raises(TransferExtraFilesError) as info:
        transfer(store, "src1", store, "m1")

    assert info.value.files == ("sub/q.txt",)
    assert "'sub' hold(s) a completion marker or journal of its own" in str(info.value)
    assert _files(store, "m1") == before and store.is_complete("m1/sub")


def test_a_file_of_another_transfer_into_a_subfolder_is_not_mirrored(make_store: MakeStore) -> None:
    store = make_store("local", "lake")
    store.write_bytes("src1/a.txt", b"a")
    store.write_bytes("src2/q.txt", b"q")
    transfer(store, "src1", store, "m1")
    transfer(store, "src2", store, "m1/sub")

    with pytest.raises(TransferExtraFilesError, match=r"wrote there \('sub/q.txt'\); 'sub' hold\(s\)"):
        transfer(store, "src1", store, "m1")

    assert store.read_bytes("m1/sub/q.txt") == b"q" and store.is_complete("m1/sub")


def _copied_then_dropped(make_store: MakeStore) -> Datastore:
    """``src1`` (a.txt, b.txt) copied to ``m1``, then ``b.txt`` dropped from the source."""
    store = make_store("local", "lake")
    store.write_bytes("src1/a.txt", b"a")
    store.write_bytes("src1/b.txt", b"b")
    transfer(store, "src1", store, "m1")
    store.delete("src1/b.txt")
    return store


def test_a_file_rewritten_since_the_transfer_is_not_removed(make_store: MakeStore) -> None:
    store = _copied_then_dropped(make_store)
    store.write_bytes("m1/b.txt", b"edited by hand")

    with pytest.raises(TransferExtraFilesError, match=r"wrote there \('b.txt'\)"):
        transfer(store, "src1", store, "m1")

    assert store.read_bytes("m1/b.txt") == b"edited by hand"


@pytest.mark.parametrize("backend", BACKENDS)
def test_foreign_files_are_refused_and_nothing_is_written(make_store: MakeStore, backend: str) -> None:
    store = make_store(backend, "lake")
    store.write_bytes("src1/a.txt", b"a")
    for i in range(7):
        store.write_bytes(f"other/z{i}.txt", b"someone else's")
    before = _files(store, "other")

    with pytest.raises(TransferExtraFilesError) as info:
        transfer(store, "src1", store, "other")

    message = str(info.value)
    assert message.startswith("transfer destination: datastore 'lake' path 'other'")
    assert "holds 7 file(s) that the source does not have ('z0.txt', 'z1.txt'" in message
    assert "and 2 more" in message and "remove those files first" in message
    assert info.value.files == tuple(f"z{i}.txt" for i in range(7))
    assert _files(store, "other") == before


def test_a_transfer_of_another_source_is_not_the_transfers_own(make_store: MakeStore) -> None:
    store = make_store("local", "lake")
    store.write_bytes("src1/a.txt", b"a")
    store.write_bytes("src2/b.txt", b"b")
    transfer(store, "src2", store, "m1")
    with pytest.raises(TransferExtraFilesError, match=r"no transfer of .*src1 wrote this folder"):
        transfer(store, "src1", store, "m1")
    assert set(_files(store, "m1")) == {"b.txt", COMPLETE_MARKER}


def test_mirror_off_keeps_the_files_and_refuses(make_store: MakeStore) -> None:
    store = _copied_then_dropped(make_store)
    with pytest.raises(TransferExtraFilesError, match=r"mirror=False"):
        transfer(store, "src1", store, "m1", mirror=False)
    assert store.read_bytes("m1/b.txt") == b"b" and store.is_complete("m1")


def _registered(store: Datastore, folder: str) -> None:
    """The folder's marker as the transfer operator leaves it once it registered a version from the copy."""
    marker = store.read_marker(folder)
    store.mark_complete(folder, {**marker, "step_run_id": "d.r.copy.t1.x", "registered": {"name": "cp", "version": 1}})


@pytest.mark.parametrize("backend", ["local", "azurite", "moto"])
def test_a_registered_copy_of_the_same_source_is_never_mirrored_or_overwritten(
    make_store: MakeStore, backend: str
) -> None:
    """Its own earlier copy, registered since: a version names those files, so a later transfer of the same
    source neither removes the one the source dropped nor replaces the one it changed, overwrite or not."""
    store = make_store(backend, "lake")
    store.write_bytes("src1/a.txt", b"a")
    store.write_bytes("src1/b.txt", b"b")
    transfer(store, "src1", store, "m1")
    _registered(store, "m1")
    store.delete("src1/b.txt")
    with pytest.raises(TransferExtraFilesError, match=r"dataset 'cp' version 1, which names them: they are never remo"):
        transfer(store, "src1", store, "m1")
    store.write_bytes("src1/b.txt", b"b")
    store.write_bytes("src1/a.txt", b"changed")
    with pytest.raises(TransferDestinationExistsError, match=r"never replaced, whatever overwrite=True says") as info:
        transfer(store, "src1", store, "m1", overwrite=True)
    assert "Pass overwrite=True" not in str(info.value)
    assert _files(store, "m1") == {
        "a.txt": b"a",
        "b.txt": b"b",
        COMPLETE_MARKER: store.read_bytes(f"m1/{COMPLETE_MARKER}"),
    }
    assert store.read_marker("m1")["registered"] == {"name": "cp", "version": 1}
    store.write_bytes("src1/a.txt", b"a")
    store.write_bytes("src1/c.txt", b"c")  # a file the source added: copied, no named byte changes
    assert transfer(store, "src1", store, "m1").files_copied == 1


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Datastore:
    root = tmp_path / "lake"
    (root / "in").mkdir(parents=True)
    (root / "in/a.txt").write_text("a")
    extra = {"url": root.as_uri()}
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # main() sends stdout to stderr; undone after the test
    resolve.clear_cache()
    return Datastore.get("lake")


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from airflow_mlpipe.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["transfer", *args])
    return int(info.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        pytest.param(("lake:in", "lake:xx", "--file"), "is a folder; leave out --file to copy a folder", id="file"),
        pytest.param(("lake:in/a.txt", "lake:xx"), "is a file; pass --file to copy one file", id="folder"),
        pytest.param(("lake:in/../in", "lake:xx"), "error: transfer source: datastore 'lake'", id="dotdot-source"),
        pytest.param(("lake:in", "lake:a/../b"), "error: transfer destination: datastore 'lake'", id="dotdot-dest"),
    ],
)
def test_cli_errors_name_the_side_and_its_own_options(
    lake: Datastore, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], wanted: str
) -> None:
    code, err = _cli(capsys, *args)
    assert code == 1 and wanted in err and "kind=" not in err and "Traceback" not in err
    assert not Path(lake.full_path("xx")).exists()


def test_cli_conflict_names_its_own_option(lake: Datastore, capsys: pytest.CaptureFixture[str]) -> None:
    lake.write_bytes("out/a.txt", b"different")
    code, err = _cli(capsys, "lake:in", "lake:out")
    assert code == 1 and "Pass --overwrite to replace them" in err and "overwrite=True" not in err


def test_listing_errors_name_the_side_and_the_full_path(lake: Datastore, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    (Path(lake.root) / "in/deep").mkdir()
    (Path(lake.root) / "in/deep/leak.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(PathOutsideDatastoreError, match=r"^transfer source: datastore 'lake': path 'in/deep/leak.txt'"):
        transfer(lake, "in", lake, "out")
    (Path(lake.root) / "in/deep/leak.txt").unlink()
    (Path(lake.root) / "out2").mkdir()
    (Path(lake.root) / "out2/a.txt").symlink_to(tmp_path / "gone.txt")
    with pytest.raises(PathOutsideDatastoreError, match=r"^transfer destination: datastore 'lake': path 'out2/a.txt'"):
        transfer(lake, "in", lake, "out2")


def test_operator_words_in_kind_errors(lake: Datastore) -> None:
    words = {"directory": "pass source_reference_type='directory'"}
    with pytest.raises(TransferKindError, match="is a folder; pass source_reference_type='directory'"):
        transfer(lake, "in", lake, "xx", kind="file", option_words=words)


def test_cli_into_a_registered_copy_changes_no_byte(lake: Datastore, capsys: pytest.CaptureFixture[str]) -> None:
    transfer(lake, "in", lake, "out")
    _registered(lake, "out")
    lake.write_bytes("in/a.txt", b"changed")
    code, err = _cli(capsys, "lake:in", "lake:out", "--overwrite")
    assert code == 1 and "whatever --overwrite says: copy into a folder of its own" in err and "Traceback" not in err
    assert lake.read_bytes("out/a.txt") == b"a"
