"""Source snapshot trees: the value object, its digest, diff, and scanning a folder (links, modes, errors)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import xxhash

from airflow_mlpipe.exceptions import ConfigError, FingerprintPathNotFoundError, UnreadableFileError
from airflow_mlpipe.fingerprint import scan
from airflow_mlpipe.fingerprint.statcache import FolderStats, StatCache, stat_key
from airflow_mlpipe.fingerprint.tree import Tree, TreeDiff, TreeEntry, diff, scan_tree
from tests.fingerprint.helpers import LaterClock, write_tree

# Both ways a folder is scanned: read while walked (nothing cached for it), or looked up in the stat cache.
SCAN_WAYS = [pytest.param(False, id="first-scan"), pytest.param(True, id="cached-before")]


def scan_one_way(folder: Path, cache: StatCache, cached: bool) -> Tree:
    if cached:
        scan_tree(folder, cache=cache)
    return scan_tree(folder, cache=cache if cached else False)


SOURCE = {"train.py": "print('train')\n", "pkg/__init__.py": "", "pkg/util.py": "X = 1\n", "conf/a.yaml": "a: 1\n"}


def reference(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


# -- the value object ------------------------------------------------------------------------------------------
def test_entries_are_sorted_and_the_digest_ignores_insertion_order() -> None:
    a = Tree({"b.py": TreeEntry(1, "d1"), "a.py": TreeEntry(2, "d2")})
    b = Tree({"a.py": TreeEntry(2, "d2"), "b.py": TreeEntry(1, "d1")})
    assert list(a) == ["a.py", "b.py"]
    assert a.digest == b.digest and a == b and hash(a) == hash(b)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({"a.py": TreeEntry(2, "d2x")}, id="content"),
        pytest.param({"a.py": TreeEntry(3, "d2")}, id="size"),
        pytest.param({"a.py": TreeEntry(2, "d2", executable=True)}, id="executable-bit"),
        pytest.param({"a.py": TreeEntry(2, "d2", link=True)}, id="a-link-not-a-file"),
        pytest.param({"A.py": TreeEntry(2, "d2")}, id="name"),
        pytest.param({}, id="empty"),
    ],
)
def test_any_difference_changes_the_digest(other: dict[str, TreeEntry]) -> None:
    assert Tree(other).digest != Tree({"a.py": TreeEntry(2, "d2")}).digest


def test_digest_is_the_documented_serialisation() -> None:
    tree = Tree({"a b/c.py": TreeEntry(3, "ab" * 16, executable=True), "z": TreeEntry(0, "cd" * 16)})
    body = f"mlpipe-tree/1\0a b/c.py\x003\0{'ab' * 16}\0x\0z\x000\0{'cd' * 16}\0-\0"
    assert tree.digest == reference(body.encode())


def test_to_dict_round_trips_through_json() -> None:
    tree = Tree({"x.py": TreeEntry(5, "e" * 32, executable=True), "lnk": TreeEntry(3, "f" * 32, link=True)})
    again = Tree.from_dict(json.loads(json.dumps(tree.to_dict())))
    assert again == tree and again.entries == tree.entries


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param({"digest": "0" * 32}, id="digest-does-not-match"),
        pytest.param({"format": "mlpipe-tree/0"}, id="other-format"),
        pytest.param({"hash": "md5"}, id="other-hash"),
    ],
)
def test_from_dict_refuses_a_damaged_record(damage: dict[str, str]) -> None:
    record = Tree({"x.py": TreeEntry(5, "e" * 32)}).to_dict() | damage
    with pytest.raises(ValueError):
        Tree.from_dict(record)


def test_tree_is_frozen() -> None:
    tree = Tree({"x.py": TreeEntry(5, "e" * 32)})
    with pytest.raises(AttributeError):
        tree.entries = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        tree.entries["y.py"] = TreeEntry(1, "f" * 32)  # type: ignore[index]


# -- diff ---------------------------------------------------------------------------------------------------------
def test_diff_lists_added_removed_and_changed() -> None:
    old = Tree({"train.py": TreeEntry(1, "a"), "old.py": TreeEntry(1, "b"), "same.py": TreeEntry(1, "c")})
    new = Tree({"train.py": TreeEntry(1, "A"), "new.py": TreeEntry(1, "d"), "same.py": TreeEntry(1, "c")})
    change = diff(old, new)
    assert change == TreeDiff(added=("new.py",), removed=("old.py",), changed=("train.py",))
    assert change.describe("source file") == [
        "source file train.py changed",
        "source file new.py added",
        "source file old.py removed",
    ]
    assert not diff(new, new)


def test_describe_is_bounded() -> None:
    change = TreeDiff(added=tuple(f"f{i}.py" for i in range(30)))
    lines = change.describe(limit=5)
    assert lines[:5] == [f"file f{i}.py added" for i in range(5)] and lines[5] == "... and 25 more"


# -- scanning a folder ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cached", SCAN_WAYS)
def test_scan_records_size_content_and_executable_bit(tmp_path: Path, cache: StatCache, cached: bool) -> None:
    write_tree(tmp_path, SOURCE)
    (tmp_path / "train.py").chmod(0o755)
    tree = scan_one_way(tmp_path, cache, cached)
    assert sorted(tree) == sorted(SOURCE)
    assert tree["train.py"] == TreeEntry(len(SOURCE["train.py"]), reference(SOURCE["train.py"].encode()), True)
    assert tree["pkg/util.py"].executable is False


def test_digest_does_not_depend_on_mtimes_or_location(tmp_path: Path) -> None:
    first = scan_tree(write_tree(tmp_path / "one", SOURCE), cache=False)
    second = write_tree(tmp_path / "two", SOURCE)
    os.utime(second / "train.py", (1, 1))
    assert scan_tree(second, cache=False).digest == first.digest


def test_editing_a_file_is_named_by_diff(tmp_path: Path, cache: StatCache) -> None:
    write_tree(tmp_path, SOURCE)
    before = scan_tree(tmp_path, cache=cache)
    (tmp_path / "train.py").write_text("print('changed')\n")
    after = scan_tree(tmp_path, cache=cache)
    assert diff(before, after).describe("source file") == ["source file train.py changed"]


@pytest.mark.parametrize("cached", SCAN_WAYS)
def test_symlinks(tmp_path: Path, cache: StatCache, cached: bool) -> None:
    outside = write_tree(tmp_path / "outside", {"shared.py": "S = 1\n", "lib/x.py": "x"})
    src = write_tree(tmp_path / "src", {"train.py": "t"})
    (src / "to_file.py").symlink_to(src / "train.py")
    (src / "to_outside_file.py").symlink_to(outside / "shared.py")
    (src / "to_folder").symlink_to(outside / "lib")
    (src / "loop").symlink_to(src)
    (src / "dangling").symlink_to(src / "nowhere")
    tree = scan_one_way(src, cache, cached)
    assert tree["to_file.py"] == tree["train.py"]  # a link to a file counts as the file
    assert tree["to_outside_file.py"].digest == reference(b"S = 1\n")
    for name in ("to_folder", "loop", "dangling"):  # not followed: the link text is fingerprinted
        assert tree[name].link
        assert tree[name].digest == reference(os.fsencode(os.readlink(src / name)))
    assert not any(p.startswith(("to_folder/", "loop/")) for p in tree)


def test_repointing_a_folder_link_is_a_change(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"train.py": "t", "../a/x": "1", "../b/x": "2"})
    (src / "data").symlink_to(tmp_path / "a")
    before = scan_tree(src, cache=False)
    (src / "data").unlink()
    (src / "data").symlink_to(tmp_path / "b")
    assert diff(before, scan_tree(src, cache=False)).changed == ("data",)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FingerprintPathNotFoundError, match="does not exist") as info:
        scan_tree(tmp_path / "nope")
    assert isinstance(info.value, ConfigError) and isinstance(info.value, FileNotFoundError)


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        scan_tree(tmp_path / "f.py")


@pytest.mark.parametrize("cached", SCAN_WAYS)
def test_a_fifo_is_named_not_waited_on(tmp_path: Path, cache: StatCache, cached: bool) -> None:
    write_tree(tmp_path, {"train.py": "t"})
    if cached:
        scan_tree(tmp_path, cache=cache)
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link-to-pipe").symlink_to(tmp_path / "pipe")
    with pytest.raises(UnreadableFileError, match="'(link-to-)?pipe'.*not a regular file"):
        scan_tree(tmp_path, cache=cache if cached else False)


def test_a_fifo_that_is_ignored_is_fine(tmp_path: Path) -> None:
    write_tree(tmp_path, {"train.py": "t", ".amlignore": "pipe\n"})
    os.mkfifo(tmp_path / "pipe")
    assert sorted(scan_tree(tmp_path, cache=False)) == [".amlignore", "train.py"]


def _scan_as_nobody(folder: Path, cache: StatCache | bool) -> str:
    """Scan in a forked child that has dropped root: root reads any file, whatever its mode bits."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        message = "no error"
        try:
            os.setgid(65534)
            os.setuid(65534)
            scan_tree(folder, cache=cache, workers=1)
        except UnreadableFileError as exc:
            message = f"UnreadableFileError: {exc}"
        except BaseException as exc:
            message = f"{type(exc).__name__}: {exc}"
        if isinstance(cache, StatCache):
            message += f" (cache hits: {cache.hits})"
        os.write(write_end, message.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        message = fh.read().decode()
    os.waitpid(pid, 0)
    return message


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A folder another user can reach (pytest's temporary folders are private to their owner)."""
    folder = Path(os.path.realpath(tempfile.mkdtemp(prefix="mlpipe-fp-test-")))
    folder.chmod(0o777)
    yield folder
    for path in folder.rglob("*"):
        path.chmod(0o777)
    shutil.rmtree(folder)


@pytest.mark.parametrize("what", [pytest.param("file", id="file"), pytest.param("folder", id="folder")])
@pytest.mark.parametrize("cached", [pytest.param(False, id="first-scan"), pytest.param(True, id="cached-before")])
def test_an_unreadable_file_or_folder_is_named(reachable: Path, what: str, cached: bool) -> None:
    src = write_tree(reachable / "src", {"train.py": "t", "secret/key.txt": "k"})
    cache: StatCache | bool = False
    if cached:  # the folder is in the cache: the file is looked up (a miss: chmod changed its ctime), then read
        cache = StatCache(reachable / "cache" / "stat.sqlite3", clock=LaterClock())
        scan_tree(src, cache=cache)
        for path in [reachable / "cache", *(reachable / "cache").iterdir()]:
            path.chmod(0o777)
    locked = src / ("secret/key.txt" if what == "file" else "secret")
    locked.chmod(0o000)
    if os.geteuid() == 0:
        message = _scan_as_nobody(src, cache)
    else:
        with pytest.raises(UnreadableFileError) as info:
            scan_tree(src, cache=cache)
        message = f"UnreadableFileError: {info.value}"
        if isinstance(cache, StatCache):
            message += f" (cache hits: {cache.hits})"
    rel = "secret/key.txt" if what == "file" else "secret"
    assert message.startswith("UnreadableFileError:"), message
    assert repr(rel) in message and "permission denied" in message and ".amlignore" in message
    if cached and what == "file":
        assert "(cache hits: 1)" in message  # train.py came from the cache: the look-up path was taken


def test_warm_scan_reads_nothing(tmp_path: Path, cache: StatCache) -> None:
    write_tree(tmp_path, SOURCE)
    cold = scan_tree(tmp_path, cache=cache)
    assert cache.misses == len(SOURCE)
    warm = scan_tree(tmp_path, cache=cache)
    assert warm == cold
    assert (cache.hits, cache.misses) == (len(SOURCE), len(SOURCE))


def test_an_unchanged_tree_takes_its_digest_from_the_cache(tmp_path: Path, cache: StatCache) -> None:
    write_tree(tmp_path, SOURCE)
    cold = scan_tree(tmp_path, cache=cache)
    with sqlite3.connect(cache.path) as db:
        (stored,) = db.execute("SELECT digest FROM trees").fetchone()
        assert stored == cold.digest
        db.execute("UPDATE trees SET digest = 'from-the-cache'")  # to see where the next digest comes from
    db.close()
    assert scan_tree(tmp_path, cache=cache).digest == "from-the-cache"
    (tmp_path / "pkg" / "util.py").write_text("X = 2\n")  # any change: the stored digest no longer applies
    assert scan_tree(tmp_path, cache=cache).digest == scan_tree(tmp_path, cache=False).digest != cold.digest


def test_renaming_a_file_is_a_change(tmp_path: Path, cache: StatCache) -> None:
    write_tree(tmp_path, SOURCE)
    before = scan_tree(tmp_path, cache=cache)
    scan_tree(tmp_path, cache=cache)
    (tmp_path / "pkg" / "util.py").rename(tmp_path / "pkg" / "utils.py")
    change = diff(before, scan_tree(tmp_path, cache=cache))
    assert (change.added, change.removed, change.changed) == (("pkg/utils.py",), ("pkg/util.py",), ())


def test_parallel_scan_equals_one_process(tmp_path: Path, cache: StatCache, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {f"d{i:02d}/s{j}/f{k}.txt": f"{i}-{j}-{k}" for i in range(12) for j in range(3) for k in range(4)}
    files |= {".gitignore": "*.tmp\n", "d03/x.tmp": "ignored", "d05/.gitignore": "!keep.tmp\n", "d05/keep.tmp": "k"}
    write_tree(tmp_path, files)
    (tmp_path / "d07" / "link.txt").symlink_to(tmp_path / "d00" / "s0" / "f0.txt")
    (tmp_path / "d08" / "dirlink").symlink_to(tmp_path / "d01")
    expected = scan_tree(tmp_path, cache=False, workers=1)
    monkeypatch.setattr(scan, "PARALLEL_MIN_FILES", 5)  # hand most folders to workers
    assert scan_tree(tmp_path, cache=cache, workers=2).entries == expected.entries
    assert scan_tree(tmp_path, cache=cache, workers=2) == expected  # warm, in workers
    # the workers recorded their files in the shared cache
    folder = tmp_path / "d11" / "s2"
    listed = sorted(folder.iterdir())
    found = cache.lookup({str(folder): FolderStats([p.name for p in listed], [stat_key(p.stat()) for p in listed])})
    assert None not in found[str(folder)].digests
    assert "d03/x.tmp" not in expected and "d05/keep.tmp" in expected


def test_an_unreadable_file_found_by_a_worker_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path, {f"d{i}/f{k}.txt": "x" for i in range(10) for k in range(3)})
    os.mkfifo(tmp_path / "d9" / "pipe")
    monkeypatch.setattr(scan, "PARALLEL_MIN_FILES", 2)
    with pytest.raises(UnreadableFileError, match="'d9/pipe'"):
        scan_tree(tmp_path, cache=False, workers=2)
