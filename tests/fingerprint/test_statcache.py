"""The stat cache: exact-stat hits only, the racy-entry guard, and a damaged or unusable cache never failing."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest
import xxhash

from airflow_mlpipe.fingerprint.hashing import hash_files
from airflow_mlpipe.fingerprint.statcache import (
    FolderDigests,
    FolderStats,
    StatCache,
    StatKey,
    default_stat_cache,
    signature,
    stat_key,
)
from tests.fingerprint.helpers import LaterClock, rewrite_keeping_mtime


def reference(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def lookup_one(cache: StatCache, path: Path) -> str | None:
    folder = str(path.parent)
    return cache.lookup({folder: FolderStats([path.name], [stat_key(os.stat(path))])})[folder].digests[0]


def test_second_hash_is_a_hit(tmp_path: Path, cache: StatCache) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"1,2,3\n")
    assert hash_files([path], cache=cache) == [reference(b"1,2,3\n")]
    assert (cache.hits, cache.misses) == (0, 1)
    assert hash_files([path], cache=cache) == [reference(b"1,2,3\n")]
    assert (cache.hits, cache.misses) == (1, 1)


def test_touching_only_the_mtime_rereads_and_gives_the_same_digest(tmp_path: Path, cache: StatCache) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"same bytes")
    hash_files([path], cache=cache)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert lookup_one(cache, path) is None  # the stat differs: not trusted
    assert hash_files([path], cache=cache) == [reference(b"same bytes")]
    assert lookup_one(cache, path) == reference(b"same bytes")  # and remembered under the new stat


def test_new_bytes_same_size_and_mtime_are_detected_through_the_ctime(tmp_path: Path, cache: StatCache) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n1,2\n")
    hash_files([path], cache=cache)
    before = os.stat(path)
    rewrite_keeping_mtime(path, b"a,b\n9,9\n")
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert hash_files([path], cache=cache) == [reference(b"a,b\n9,9\n")]


def test_a_file_changed_within_the_racy_window_is_not_cached(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "c.sqlite3")  # the real clock: the file was written just now
    path = tmp_path / "fresh.txt"
    path.write_bytes(b"v1")
    assert hash_files([path], cache=cache) == [reference(b"v1")]
    # not remembered, so a rewrite that keeps the whole stat (possible within one timestamp tick) is still read
    assert lookup_one(cache, path) is None


def test_the_racy_window_is_measured_from_the_start_of_hashing(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "c.sqlite3", racy_window_ns=1_000)
    key = (3, 10_000, 1, 10_000)
    folder = str(tmp_path)
    cache.record({folder: FolderDigests(["young"], [key], ["d"])}, started_ns=10_500)
    cache.record({folder: FolderDigests(["old"], [key], ["d"])}, started_ns=11_001)
    assert cache.lookup({folder: FolderStats(["young", "old"], [key, key])})[folder].digests == [None, "d"]


def test_complete_folders_forget_files_that_are_gone(tmp_path: Path, cache: StatCache) -> None:
    folder = str(tmp_path)
    key = (1, 1, 1, 1)
    cache.record({folder: FolderDigests(["a", "b"], [key, key], ["da", "db"])}, started_ns=cache.clock())
    cache.record({folder: FolderDigests(["a"], [key], ["da"], complete=True)}, started_ns=cache.clock())
    assert cache.lookup({folder: FolderStats(["a", "b"], [key, key])})[folder].digests == ["da", None]


@pytest.mark.parametrize(
    ("names", "keys", "whole"),
    [
        pytest.param(["a", "b"], [(1, 1, 1, 1), (2, 2, 2, 2)], True, id="same-listing"),
        pytest.param(["b", "a"], [(2, 2, 2, 2), (1, 1, 1, 1)], False, id="other-order"),
        pytest.param(["a"], [(1, 1, 1, 1)], False, id="a-file-gone"),
        pytest.param(["a", "b"], [(1, 1, 1, 1), (2, 2, 2, 3)], False, id="a-file-changed"),
    ],
)
def test_a_folder_kept_whole_is_recognised_by_its_signature(
    tmp_path: Path, cache: StatCache, names: list[str], keys: list[StatKey], whole: bool
) -> None:
    folder = str(tmp_path)
    recorded = FolderDigests(["a", "b"], [(1, 1, 1, 1), (2, 2, 2, 2)], ["da", "db"], complete=True)
    assert cache.record({folder: recorded}, started_ns=cache.clock()) == {folder: signature(["a", "b"], recorded.keys)}
    found = cache.lookup({folder: FolderStats(names, keys)})[folder]
    assert (found.signature is not None) is whole
    expected = {"a": "da", "b": None if names == ["a", "b"] and not whole else "db"}
    assert found.digests == [expected[n] for n in names]


def test_a_folder_with_a_racy_file_is_not_kept_whole(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "c.sqlite3", racy_window_ns=1_000)
    folder = str(tmp_path)
    keys = [(1, 100, 1, 100), (1, 10_000, 2, 10_000)]
    record = FolderDigests(["old", "young"], keys, ["do", "dy"], complete=True)
    assert cache.record({folder: record}, started_ns=10_500) == {}
    found = cache.lookup({folder: FolderStats(["old", "young"], keys)})[folder]
    assert found.digests == ["do", None]
    assert found.signature is None


def test_a_corrupt_cache_file_is_rebuilt_with_a_warning(
    tmp_path: Path, cache: StatCache, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"x")
    hash_files([path], cache=cache)
    cache.path.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{cache.path}{suffix}").unlink(missing_ok=True)
    with caplog.at_level(logging.WARNING):
        assert hash_files([path], cache=cache) == [reference(b"x")]
    assert "damaged" in caplog.text
    assert hash_files([path], cache=cache) == [reference(b"x")]
    assert lookup_one(cache, path) == reference(b"x")  # rebuilt and in use again


def test_a_damaged_row_is_ignored_and_overwritten(
    tmp_path: Path, cache: StatCache, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"x")
    hash_files([path], cache=cache)
    with sqlite3.connect(cache.path) as db:
        db.execute("UPDATE folders SET digests = ?", (b"\x00" * 8 + b"garbage",))
    db.close()
    with caplog.at_level(logging.WARNING):
        assert hash_files([path], cache=cache) == [reference(b"x")]
    assert "damaged entry" in caplog.text
    assert lookup_one(cache, path) == reference(b"x")


def test_a_cache_that_cannot_be_created_is_bypassed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cache = StatCache(blocker / "stat.sqlite3", clock=LaterClock())
    path = tmp_path / "a.txt"
    path.write_bytes(b"x")
    with caplog.at_level(logging.WARNING):
        assert hash_files([path], cache=cache) == [reference(b"x")]
        assert hash_files([path], cache=cache) == [reference(b"x")]
    assert caplog.text.count("files are read again") == 1  # said once, not per call


def test_a_cache_of_another_format_is_emptied(tmp_path: Path, cache: StatCache) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"x")
    hash_files([path], cache=cache)
    with sqlite3.connect(cache.path) as db:
        db.execute("UPDATE meta SET value = 'some-other-format' WHERE key = 'format'")
    db.close()
    assert lookup_one(cache, path) is None


def _hash_in_child(cache_path: str, paths: list[str]) -> list[str]:
    return hash_files(paths, cache=StatCache(cache_path, clock=LaterClock()))


def test_concurrent_processes_share_one_cache(tmp_path: Path) -> None:
    cache_path = tmp_path / "shared.sqlite3"
    paths = []
    for i in range(40):
        path = tmp_path / f"f{i}.txt"
        path.write_text(f"content {i}")
        paths.append(str(path))
    # Two writers to the same folder's row at once (one per CPU: more would only measure the machine's load
    # against SQLite's busy timeout, after which a cache write is skipped by design).
    jobs = [paths[i::2] for i in range(2)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.starmap(_hash_in_child, [(str(cache_path), job) for job in jobs])
    for job, digests in zip(jobs, results, strict=True):
        assert digests == [reference(Path(p).read_bytes()) for p in job]
    cache = StatCache(cache_path, clock=LaterClock())
    assert all(lookup_one(cache, Path(p)) is not None for p in paths)  # no writer's entries were lost


def test_a_process_that_makes_the_file_first_keeps_its_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes open a new cache file at once: B reads "no format yet", then A makes the tables and writes its
    rows before B gets the write lock. B must not then drop A's tables as if they were of another format."""
    cache_path = tmp_path / "shared.sqlite3"
    a_file = tmp_path / "a" / "x.txt"
    a_file.parent.mkdir()
    a_file.write_text("written by the other process")
    real_connect = sqlite3.connect
    other_wrote = []

    class LateLocker(sqlite3.Connection):
        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if sql == "BEGIN IMMEDIATE" and not other_wrote:
                other_wrote.append(True)  # the other process runs to the end between B's read and B's lock
                hash_files([a_file], cache=StatCache(cache_path, clock=LaterClock()))
            return super().execute(sql, *args)

    def connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        if other_wrote:
            return real_connect(*args, **kwargs)  # type: ignore[arg-type]
        return real_connect(*args, factory=LateLocker, **kwargs)  # type: ignore[arg-type, misc]

    monkeypatch.setattr(sqlite3, "connect", connect)
    b_file = tmp_path / "b.txt"
    b_file.write_text("written by this process")
    hash_files([b_file], cache=StatCache(cache_path, clock=LaterClock()))
    monkeypatch.undo()
    assert other_wrote
    cache = StatCache(cache_path, clock=LaterClock())
    assert lookup_one(cache, a_file) == reference(a_file.read_bytes())  # the other process's row survived
    assert lookup_one(cache, b_file) == reference(b_file.read_bytes())


def test_default_cache_lives_under_mlpipe_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "home"))
    assert default_stat_cache().path == tmp_path / "home" / "cache" / "stat-cache.sqlite3"
    assert default_stat_cache() is default_stat_cache()
