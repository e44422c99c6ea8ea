"""Extra ``hash_paths``: files and folders inside or outside the source folder, and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xxhash

from airflow_mlpipe.exceptions import ConfigError, FingerprintPathNotFoundError, UnreadableFileError
from airflow_mlpipe.fingerprint.hash_paths import scan_hash_paths
from airflow_mlpipe.fingerprint.statcache import StatCache
from airflow_mlpipe.fingerprint.tree import diff
from tests.fingerprint.helpers import write_tree


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    write_tree(
        tmp_path,
        {
            "src/train.py": "t",
            "src/conf/a.yaml": "a: 1",
            "shared/util.py": "U = 1",
            "shared/deep/x.py": "x",
            "shared/.gitignore": "*.bak\n",
            "shared/old.bak": "ignored",
        },
    )
    return tmp_path


def test_entries_are_named_as_written(layout: Path, cache: StatCache) -> None:
    absolute = str(layout / "shared" / "util.py")
    tree = scan_hash_paths(layout / "src", ["conf/a.yaml", "../shared", absolute, "./conf/"], cache=cache)
    # "./conf/" names the same file as "conf/a.yaml" once normalised: one entry
    assert sorted(tree) == sorted(
        ["conf/a.yaml", "../shared/.gitignore", "../shared/util.py", "../shared/deep/x.py", absolute]
    )
    assert tree["../shared/util.py"].digest == xxhash.xxh3_128_hexdigest(b"U = 1")
    assert tree["../shared/util.py"] == tree[absolute]


def test_a_change_outside_the_source_folder_is_named(layout: Path, cache: StatCache) -> None:
    before = scan_hash_paths(layout / "src", ["../shared"], cache=cache)
    (layout / "shared" / "util.py").write_text("U = 2")
    after = scan_hash_paths(layout / "src", ["../shared"], cache=cache)
    assert diff(before, after).describe("hash path") == ["hash path ../shared/util.py changed"]


@pytest.mark.parametrize(
    "entry",
    [pytest.param("missing.py", id="relative"), pytest.param("/no/such/folder", id="absolute")],
)
def test_a_missing_entry_is_named(layout: Path, entry: str) -> None:
    with pytest.raises(FingerprintPathNotFoundError) as info:
        scan_hash_paths(layout / "src", ["conf/a.yaml", entry])
    assert repr(entry) in str(info.value) and "does not exist" in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_a_dangling_link_entry_does_not_exist(layout: Path) -> None:
    (layout / "src" / "gone.py").symlink_to(layout / "nowhere.py")
    with pytest.raises(FingerprintPathNotFoundError, match="'gone.py'"):
        scan_hash_paths(layout / "src", ["gone.py"])


def test_a_fifo_entry_is_refused(layout: Path) -> None:
    os.mkfifo(layout / "src" / "pipe")
    with pytest.raises(UnreadableFileError, match="'pipe'.*not a regular file"):
        scan_hash_paths(layout / "src", ["pipe"])


def test_no_entries_is_an_empty_tree(layout: Path) -> None:
    assert len(scan_hash_paths(layout / "src", [])) == 0
