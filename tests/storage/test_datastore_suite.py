"""One datastore suite, run on local, memory, Azurite (adlfs) and moto (s3fs)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from airflow_mlpipe.exceptions import IncompleteFolderError, PathOutsideDatastoreError
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore


def test_write_read_roundtrip(datastore: Datastore) -> None:
    datastore.write_bytes("a/b/c.bin", b"\x00\x01payload")
    assert datastore.read_bytes("a/b/c.bin") == b"\x00\x01payload"
    assert datastore.exists("a/b/c.bin")
    assert datastore.isfile("a/b/c.bin")
    assert datastore.isdir("a/b")
    assert datastore.info("a/b/c.bin")["size"] == 9


def test_json_and_text(datastore: Datastore) -> None:
    datastore.write_json("r/x.json", {"b": 2, "a": [1, 2]})
    assert datastore.read_json("r/x.json") == {"a": [1, 2], "b": 2}
    datastore.write_text("r/t.txt", "héllo")
    assert datastore.read_text("r/t.txt") == "héllo"


def test_open_stream(datastore: Datastore) -> None:
    with datastore.open("s/big.bin", "wb") as fh:
        for i in range(64):
            fh.write(bytes([i]) * 1024)
    with datastore.open("s/big.bin", "rb") as fh:
        fh.seek(63 * 1024)
        assert fh.read(4) == bytes([63]) * 4


def test_write_bytes_replaces_whole_object(datastore: Datastore) -> None:
    datastore.write_bytes("k", b"x" * 1000)
    datastore.write_bytes("k", b"short")
    assert datastore.read_bytes("k") == b"short"


def test_list_and_glob(datastore: Datastore) -> None:
    for rel in ["d/1.csv", "d/2.csv", "d/sub/3.csv", "d/sub/4.txt", "other.txt"]:
        datastore.write_bytes(rel, rel.encode())
    assert datastore.list("d") == ["d/1.csv", "d/2.csv", "d/sub"]
    assert datastore.list("d", recursive=True) == ["d/1.csv", "d/2.csv", "d/sub/3.csv", "d/sub/4.txt"]
    detail = datastore.list("d", recursive=True, detail=True)
    assert detail["d/sub/4.txt"]["size"] == len(b"d/sub/4.txt")
    assert datastore.glob("d/*.csv") == ["d/1.csv", "d/2.csv"]
    assert datastore.glob("d/**/*.csv") == ["d/1.csv", "d/2.csv", "d/sub/3.csv"]
    assert "other.txt" in datastore.list()


def test_missing_file_names_datastore_and_path(datastore: Datastore) -> None:
    with pytest.raises(FileNotFoundError, match=rf"datastore {datastore.name!r}: 'nope/x.csv' does not exist"):
        datastore.read_bytes("nope/x.csv")
    assert not datastore.exists("nope/x.csv")


def test_delete_file_and_folder(datastore: Datastore) -> None:
    datastore.write_bytes("del/a", b"1")
    datastore.write_bytes("del/sub/b", b"2")
    datastore.write_bytes("keep/c", b"3")
    datastore.delete("del/a")
    assert not datastore.exists("del/a")
    datastore.delete("del", recursive=True)
    assert datastore.list(recursive=True) == ["keep/c"]
    datastore.delete("never-existed")  # missing_ok by default
    with pytest.raises(FileNotFoundError):
        datastore.delete("never-existed", missing_ok=False)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("../escape", id="dotdot"),
        pytest.param("a/../../escape", id="nested-dotdot"),
        pytest.param("/etc/passwd", id="absolute"),
    ],
)
def test_paths_cannot_escape_root(datastore: Datastore, bad: str) -> None:
    before = datastore.list(recursive=True) if datastore.exists() else []
    with pytest.raises(PathOutsideDatastoreError, match="datastore"):
        datastore.write_bytes(bad, b"x")
    with pytest.raises(PathOutsideDatastoreError):
        datastore.read_bytes(bad)
    after = datastore.list(recursive=True) if datastore.exists() else []
    assert before == after


def test_create_if_absent_once(datastore: Datastore) -> None:
    assert datastore.create_if_absent("locks/one", b"first") is True
    assert datastore.create_if_absent("locks/one", b"second") is False
    assert datastore.read_bytes("locks/one") == b"first"


def test_create_if_absent_race_has_exactly_one_winner(datastore: Datastore) -> None:
    contenders = 16
    barrier = threading.Barrier(contenders)
    results: dict[int, bool] = {}
    errors: list[BaseException] = []

    def contend(i: int) -> None:
        try:
            barrier.wait()
            results[i] = datastore.create_if_absent("race/key.json", f'{{"winner": {i}}}'.encode())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    winners = [i for i, won in results.items() if won]
    assert len(winners) == 1, results
    assert datastore.read_json("race/key.json") == {"winner": winners[0]}
    assert datastore.list("race") == ["race/key.json"]  # no temporary files left behind


def test_completion_marker(datastore: Datastore) -> None:
    datastore.write_bytes("out/part-0.csv", b"a,b\n1,2\n")
    assert not datastore.is_complete("out")
    with pytest.raises(IncompleteFolderError, match="incomplete"):
        datastore.read_marker("out")
    datastore.mark_complete("out", {"files": 1})
    assert datastore.is_complete("out")
    assert datastore.read_marker("out") == {"files": 1}
    datastore.clear_complete("out")
    assert not datastore.is_complete("out")
    assert datastore.list("out") == ["out/part-0.csv"]


def test_upload_and_download_folder(datastore: Datastore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "nested" / "deep").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"A")
    (src / "nested" / "b.bin").write_bytes(bytes(range(256)) * 40)
    (src / "nested" / "deep" / "c.txt").write_bytes(b"")
    written = datastore.upload(src, "up/folder")
    assert sorted(written) == ["up/folder/a.txt", "up/folder/nested/b.bin", "up/folder/nested/deep/c.txt"]
    datastore.mark_complete("up/folder")
    dst = tmp_path / "dst"
    datastore.download("up/folder", dst)
    assert (dst / "a.txt").read_bytes() == b"A"
    assert (dst / "nested" / "b.bin").read_bytes() == bytes(range(256)) * 40
    assert (dst / "nested" / "deep" / "c.txt").read_bytes() == b""
    assert not (dst / COMPLETE_MARKER).exists()


def test_upload_and_download_single_file(datastore: Datastore, tmp_path: Path) -> None:
    src = tmp_path / "one.csv"
    src.write_text("x\n1\n")
    assert datastore.upload(src, "files/one.csv") == ["files/one.csv"]
    out = tmp_path / "back" / "one.csv"
    datastore.download("files/one.csv", out)
    assert out.read_text() == "x\n1\n"


def test_download_missing_folder_fails(datastore: Datastore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datastore.download("absent", tmp_path / "x")


def test_uri_and_repr(datastore: Datastore) -> None:
    uri = datastore.uri("x/y.csv")
    assert uri.endswith("/root/x/y.csv") or uri.endswith("/store/x/y.csv") or uri.endswith("/x/y.csv")
    assert "://" in uri
    assert repr(datastore).startswith(f"Datastore(name={datastore.name!r}")
