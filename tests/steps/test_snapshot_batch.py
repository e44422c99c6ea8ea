"""Source snapshots stored and fetched in batches: small files in one pack per tree, large ones as shared objects,
and a machine-local cache keyed by tree digest. Round trips on every backend, snapshots stored before packs
existed, the cache (no request on a hit, a damaged entry refetched), a store killed before its commit point, and
racing stores of one tree."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.fingerprint.tree import Tree
from airflow_mlpipe.steps import snapshot
from airflow_mlpipe.steps.snapshot import (
    fetch_snapshot,
    object_path,
    pack_path,
    scan_source,
    store_snapshot,
    tree_path,
)
from airflow_mlpipe.steps.snapshot_cache import SnapshotCache
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_azurite_datastore

BIG = 4096  # files this big or bigger are objects of their own in these tests (the pack limit, made small)


@pytest.fixture(autouse=True)
def _small_pack_limit_and_own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(snapshot, "PACK_MAX_FILE", BIG)
    monkeypatch.setenv("MLPIPE_CACHE_DIR", str(tmp_path / "cache"))


def _source(folder: Path, *, small: int = 30, big: int = 3) -> Path:
    """Small files in nested folders, large ones, an executable script, an empty file and a link."""
    for i in range(small):
        path = folder / f"pkg{i % 4}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"X = {i}\n" * (i + 1))
    for i in range(big):
        (folder / f"weights{i}.bin").write_bytes(os.urandom(BIG + 1000 * i))
    (folder / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (folder / "run.sh").chmod(0o755)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "current").symlink_to("pkg0")
    return folder


def _stored_in_memory(tmp_path: Path, **source: int) -> tuple[Datastore, Path, Tree]:
    """A memory datastore holding the snapshot of a ``_source`` folder."""
    store = Datastore("mem", f"memory://snap-{tmp_path.name}")
    src = _source(tmp_path / "src", **source)
    tree = scan_source(str(src))
    store_snapshot(str(src), tree, store)
    return store, src, tree


def _files(folder: Path) -> dict[str, Any]:
    """Every file's bytes (a link's text), with the executable bit."""
    out: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_file():
            out[rel] = (path.read_bytes(), os.access(path, os.X_OK))
    return out


class CountingFs:
    """The datastore's filesystem, counting every method called on it."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._fs, name)
        if not callable(value):
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return value(*args, **kwargs)

        return counted


def _counting(store: Datastore) -> CountingFs:
    counting = CountingFs(store.fs)
    store.__dict__["fs"] = counting  # replaces the cached property for this datastore only
    return counting


def test_store_then_fetch_gives_the_same_bytes(datastore: Datastore, tmp_path: Path) -> None:
    src = _source(tmp_path / "src", small=300)  # files written by several threads
    tree = scan_source(str(src))
    stored = store_snapshot(str(src), tree, datastore)
    assert stored.uploaded_files == len(tree)
    record = datastore.read_json(tree_path(tree.digest))
    assert record["pack"]["files"] == len(tree) - 3 and datastore.exists(pack_path(tree.digest))
    for name in ("weights0.bin", "weights2.bin"):
        assert datastore.exists(object_path(tree.entries[name].digest))
    fetched = fetch_snapshot(tree.digest, datastore, str(tmp_path / "out"))
    assert fetched == tree
    assert _files(tmp_path / "out") == _files(src)
    if not datastore.is_local:  # again, from the cache
        assert fetch_snapshot(tree.digest, datastore, str(tmp_path / "again")) == tree
        assert _files(tmp_path / "again") == _files(src)


def test_a_second_store_costs_one_existence_check(tmp_path: Path, azurite: Any) -> None:
    store = make_azurite_datastore(azurite)
    src = _source(tmp_path / "src")
    tree = scan_source(str(src))
    store_snapshot(str(src), tree, store)
    counting = _counting(store)
    assert store_snapshot(str(src), tree, store).uploaded_files == 0
    assert counting.calls == Counter({"exists": 1})


def test_a_snapshot_stored_before_packs_existed_is_fetched(datastore: Datastore, tmp_path: Path) -> None:
    src = _source(tmp_path / "src", big=1)
    tree = scan_source(str(src))
    for rel, entry in tree.entries.items():  # the earlier layout: every file an object, a record with no pack
        full = src / rel
        data = os.fsencode(os.readlink(full)) if entry.link else full.read_bytes()
        datastore.create_if_absent(object_path(entry.digest), data)
    datastore.create_json_if_absent(tree_path(tree.digest), tree.to_dict())
    assert fetch_snapshot(tree.digest, datastore, str(tmp_path / "out")) == tree
    assert _files(tmp_path / "out") == _files(src)


@pytest.mark.parametrize("kind", [pytest.param("memory", id="memory"), pytest.param("azurite", id="azurite")])
def test_a_second_fetch_is_served_from_the_cache_without_a_request(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = (
        make_azurite_datastore(request.getfixturevalue("azurite"))
        if kind == "azurite"
        else Datastore("mem", f"memory://snap-{tmp_path.name}")
    )
    src = _source(tmp_path / "src")
    tree = scan_source(str(src))
    store_snapshot(str(src), tree, store)
    first = tmp_path / "first"
    fetch_snapshot(tree.digest, store, str(first))
    assert SnapshotCache.default().has(tree.digest)
    (first / "pkg0" / "mod0.py").write_text("edited by the step\n")  # a script editing its own sources
    counting = _counting(store)
    assert fetch_snapshot(tree.digest, store, str(tmp_path / "second")) == tree
    assert sum(counting.calls.values()) == 0
    assert _files(tmp_path / "second") == _files(src)


def test_a_first_fetch_checks_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through an empty cache: the bytes are checked as they arrive, and the copy from the entry just filled is not
    read again (a second pass over every large file cost a third of the fetch)."""
    from airflow_mlpipe.steps import snapshot_files

    store, src, tree = _stored_in_memory(tmp_path)
    checked: Counter[str] = Counter()
    real_bytes, real_file = snapshot_files.hash_bytes, snapshot_files.hash_file
    monkeypatch.setattr(snapshot_files, "hash_bytes", lambda data: checked.update(["bytes"]) or real_bytes(data))
    monkeypatch.setattr(snapshot_files, "hash_file", lambda path: checked.update(["file"]) or real_file(path))
    fetch_snapshot(tree.digest, store, str(tmp_path / "first"))
    assert _files(tmp_path / "first") == _files(src)
    assert sum(checked.values()) == len(tree.entries)  # each entry once, on arrival
    assert checked["file"] == sum(1 for e in tree.entries.values() if e.size >= BIG and not e.link)  # streamed
    checked.clear()
    fetch_snapshot(tree.digest, store, str(tmp_path / "second"))  # from the cache: checked again, as always
    assert sum(checked.values()) == len(tree.entries)


def test_a_damaged_cache_entry_is_fetched_again(tmp_path: Path) -> None:
    store, src, tree = _stored_in_memory(tmp_path)
    fetch_snapshot(tree.digest, store, str(tmp_path / "first"))
    cached = SnapshotCache.default().entry(tree.digest) / "files"
    (cached / "pkg1" / "mod1.py").write_text("X = 666\nX = 1\n")  # same length, other bytes
    (cached / "weights1.bin").unlink()
    counting = _counting(store)
    assert fetch_snapshot(tree.digest, store, str(tmp_path / "second")) == tree
    assert counting.calls["cat_file"] >= 2  # the record and the pack read again
    assert _files(tmp_path / "second") == _files(src)
    assert _files(cached) == _files(src)  # the entry was replaced by a whole one


def test_a_cache_entry_with_a_damaged_tree_record_is_fetched_again(tmp_path: Path) -> None:
    store, src, tree = _stored_in_memory(tmp_path, big=0)
    fetch_snapshot(tree.digest, store, str(tmp_path / "first"))
    (SnapshotCache.default().entry(tree.digest) / "tree.json").write_text("{not json")
    assert fetch_snapshot(tree.digest, store, str(tmp_path / "second")) == tree
    assert _files(tmp_path / "second") == _files(src)


def test_a_store_killed_before_its_record_is_no_snapshot_and_a_retry_completes_it(
    datastore: Datastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _source(tmp_path / "src")
    tree = scan_source(str(src))
    real = datastore.create_json_if_absent

    def killed(path: str, value: Any) -> bool:
        raise KeyboardInterrupt("killed after the files, before the record")

    monkeypatch.setattr(datastore, "create_json_if_absent", killed)
    with pytest.raises(KeyboardInterrupt):
        store_snapshot(str(src), tree, datastore)
    assert datastore.exists(pack_path(tree.digest)) and not datastore.exists(tree_path(tree.digest))
    with pytest.raises(ConfigError, match=f"source snapshot {tree.digest} is missing"):
        fetch_snapshot(tree.digest, datastore, str(tmp_path / "early"))
    monkeypatch.setattr(datastore, "create_json_if_absent", real)
    again = store_snapshot(str(src), tree, datastore)
    assert again.uploaded_files == 0  # everything was there: only the record was written
    assert datastore.exists(tree_path(tree.digest))
    fetch_snapshot(tree.digest, datastore, str(tmp_path / "out"))
    assert _files(tmp_path / "out") == _files(src)


def test_a_store_that_fails_on_one_large_file_writes_no_record(datastore: Datastore, tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    tree = scan_source(str(src))
    (src / "weights1.bin").write_bytes(os.urandom(BIG + 1000))  # changed after the scan
    with pytest.raises(ConfigError, match="'weights1.bin' .* changed while the step's snapshot was being taken"):
        store_snapshot(str(src), tree, datastore)
    assert not datastore.exists(tree_path(tree.digest))


def test_racing_stores_of_one_tree_all_succeed(datastore: Datastore, tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    tree = scan_source(str(src))
    start = threading.Barrier(4)

    def store_one(_: int) -> int:
        own = Datastore(datastore.name, datastore.url, dict(datastore.config.storage_options))
        start.wait()
        return store_snapshot(str(src), tree, own).uploaded_files

    with ThreadPoolExecutor(4) as pool:
        uploaded = list(pool.map(store_one, range(4)))
    assert sum(uploaded) >= len(tree)  # every file by one store at least; none of the stores failed
    record = datastore.read_json(tree_path(tree.digest))
    assert Tree.from_dict(record) == tree
    fetch_snapshot(tree.digest, datastore, str(tmp_path / "out"), cache=False)
    assert _files(tmp_path / "out") == _files(src)


def test_racing_fetches_fill_the_cache_once(tmp_path: Path) -> None:
    store, src, tree = _stored_in_memory(tmp_path)
    start = threading.Barrier(4)

    def fetch_one(n: int) -> Tree:
        start.wait()
        return fetch_snapshot(tree.digest, store, str(tmp_path / f"out{n}"))

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(fetch_one, range(4))) == {tree}
    for n in range(4):
        assert _files(tmp_path / f"out{n}") == _files(src)
    leftovers = [p.name for p in SnapshotCache.default().root.iterdir() if p.name != tree.digest]
    assert leftovers == []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda s, t: s.write_bytes(pack_path(t.digest), b"short"), id="pack-truncated"),
        pytest.param(lambda s, t: s.delete(object_path(t.entries["weights0.bin"].digest)), id="large-object-missing"),
    ],
)
def test_a_damaged_stored_snapshot_is_refused(damage: Callable[[Datastore, Tree], None], tmp_path: Path) -> None:
    store, _, tree = _stored_in_memory(tmp_path)
    damage(store, tree)
    with pytest.raises(ConfigError, match="source snapshot .*(holds 5 bytes|is missing)"):
        fetch_snapshot(tree.digest, store, str(tmp_path / "out"))
    assert not SnapshotCache.default().has(tree.digest)


def test_the_record_is_the_tree_plus_its_pack(tmp_path: Path) -> None:
    store, _, tree = _stored_in_memory(tmp_path, big=0)
    record = json.loads(store.read_bytes(tree_path(tree.digest)))
    assert record["pack"] == {
        "format": "mlpipe-pack/1",
        "path": pack_path(tree.digest),
        "max_file": BIG,
        "files": len(tree),
        "bytes": tree.size,
    }
    assert Tree.from_dict(record) == tree


def test_an_unusable_cache_folder_does_not_stop_the_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, src, tree = _stored_in_memory(tmp_path, big=1)
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("MLPIPE_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    assert fetch_snapshot(tree.digest, store, str(tmp_path / "out")) == tree
    assert _files(tmp_path / "out") == _files(src)
