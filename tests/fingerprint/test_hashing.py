"""Content hashes: the same digest as XXH3-128 of the bytes, whichever path (one process, a pool) computes it."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import xxhash

from airflow_mlpipe.fingerprint import batch
from airflow_mlpipe.fingerprint.batch import BUFFER_SIZE, hash_many, plan_batches, raise_first_error
from airflow_mlpipe.fingerprint.hashing import hash_bytes, hash_file, hash_files


def reference(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(0, id="empty"),
        pytest.param(1, id="one-byte"),
        pytest.param(BUFFER_SIZE - 1, id="buffer-minus-one"),
        pytest.param(BUFFER_SIZE, id="exactly-one-buffer"),
        pytest.param(BUFFER_SIZE + 1, id="buffer-plus-one"),
        pytest.param(5 * BUFFER_SIZE + 123, id="several-buffers"),
    ],
)
def test_hash_file_matches_reference(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert hash_file(path) == reference(data)
    assert hash_file(str(path)) == reference(data)
    assert hash_files([path]) == [reference(data)]


def test_hash_bytes_is_xxh3_128() -> None:
    assert hash_bytes(b"abc") == reference(b"abc")
    assert len(hash_bytes(b"")) == 32


def make_files(root: Path, count: int, *, seed: int = 0) -> tuple[list[Path], list[bytes]]:
    rnd = random.Random(seed)
    paths, contents = [], []
    for i in range(count):
        folder = root / f"d{i % 7}"
        folder.mkdir(exist_ok=True)
        data = rnd.randbytes(rnd.randint(0, 3000))
        path = folder / f"f{i}.bin"
        path.write_bytes(data)
        paths.append(path)
        contents.append(data)
    order = list(range(count))
    rnd.shuffle(order)  # not in folder order: results must still follow the input
    return [paths[i] for i in order], [contents[i] for i in order]


@pytest.fixture
def pool_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the pool pay off for any input, so a small test exercises the multi-process path."""
    monkeypatch.setattr(batch, "_POOL_START_SECONDS", 0.0)


@pytest.mark.parametrize("workers", [pytest.param(1, id="one-process"), pytest.param(2, id="two-processes")])
def test_hash_files_keeps_input_order(tmp_path: Path, workers: int, pool_always: None) -> None:
    paths, contents = make_files(tmp_path, 300)
    assert (len(batch.plan_batches([len(c) for c in contents], workers)) > 1) is (workers > 1)
    assert hash_files(paths, workers=workers) == [reference(c) for c in contents]


def test_hash_files_accepts_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_bytes(b"a")
    (tmp_path / "b.txt").write_bytes(b"b")
    monkeypatch.chdir(tmp_path)
    assert hash_files(["sub/a.txt", "b.txt", "sub/../b.txt"]) == [reference(b"a"), reference(b"b"), reference(b"b")]


def test_hash_files_of_nothing() -> None:
    assert hash_files([]) == []


@pytest.mark.parametrize(
    ("make", "error"),
    [
        pytest.param(lambda p: None, FileNotFoundError, id="missing"),
        pytest.param(lambda p: p.mkdir(), IsADirectoryError, id="folder"),
        pytest.param(lambda p: os.mkfifo(p), OSError, id="fifo-does-not-hang"),
    ],
)
def test_hash_files_names_the_bad_path(tmp_path: Path, make: object, error: type[OSError]) -> None:
    good = tmp_path / "good.txt"
    good.write_text("x")
    bad = tmp_path / "bad"
    make(bad)  # type: ignore[operator]
    with pytest.raises(error) as info:
        hash_files([good, bad])
    assert info.value.filename == str(bad)


def test_pool_reports_read_errors_by_input_index(tmp_path: Path, pool_always: None) -> None:
    paths, contents = make_files(tmp_path, 300)
    texts = [str(p) for p in paths]
    texts[234] = str(tmp_path / "gone.bin")
    result = hash_many(texts, workers=2)
    assert [index for index, _, _ in result.errors] == [234]
    assert result.digests[235] == reference(contents[235])
    with pytest.raises(FileNotFoundError) as info:
        raise_first_error(texts, result.errors)
    assert info.value.filename == texts[234]


def test_a_size_that_does_not_match_is_flagged_unstable(tmp_path: Path) -> None:
    path = tmp_path / "grew.bin"
    path.write_bytes(b"12345")
    result = hash_many([str(path)], [3])  # as if it grew after the stat
    assert result.digests == [reference(b"12345")]
    assert result.unstable == [0]


@pytest.mark.parametrize(
    ("sizes", "workers", "single"),
    [
        pytest.param([100] * 10, 2, True, id="few-small-files-stay-in-process"),
        pytest.param([5000] * 20_000, 2, False, id="many-files-go-to-a-pool"),
        pytest.param([5000] * 20_000, 1, True, id="one-worker"),
        pytest.param([2**30] + [10] * 100, 2, True, id="one-big-file-cannot-be-split"),
        pytest.param([2**30, 2**30], 2, False, id="two-big-files-in-parallel"),
        pytest.param([], 2, True, id="nothing"),
    ],
)
def test_plan_batches(sizes: list[int], workers: int, single: bool) -> None:
    batches = plan_batches(sizes, workers)
    assert [i for r in batches for i in r] == list(range(len(sizes)))  # every file once, in order
    assert (len(batches) <= 1) is single
