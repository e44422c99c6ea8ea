"""Hash many local files: in this process for small jobs, else in batches spread over a few worker processes.

Why processes and batches: hashing a small file is mostly system calls and interpreter work under the GIL, so
threads do not help (a thread per file is several times slower than one thread); a batch of files per task keeps
the hand-over cost per file tiny. When the pool cannot be had or breaks, the work is done in this process.

How files are read: one reused 512 KiB buffer per batch (fits the CPU's L2 cache, so the hash reads what the copy
just wrote) and ``os.readv`` into it; on this kind of machine that beats ``mmap`` (page-table set-up costs more than
the copy) and larger reads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import NamedTuple

import xxhash

from airflow_mlpipe.fingerprint.pool import POOL_ERRORS, fork_pool, worker_count

log = logging.getLogger(__name__)

BUFFER_SIZE = 512 * 1024
# A cost model for choosing between one process and a pool, from measurements on a 2-core machine: opening,
# reading and closing a small file costs about 4 us; a read from the page cache and XXH3 run at about 15 GB/s.
_SECONDS_PER_FILE = 4e-6
_SECONDS_PER_BYTE = 1 / 15e9
_POOL_START_SECONDS = 0.015  # forking the workers and handing out the work
_TASKS_PER_WORKER = 4  # more, smaller tasks even out the load when file sizes differ
# O_NONBLOCK: a FIFO that slipped through opens and reads as empty instead of hanging; no effect on files
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)


class BatchResult(NamedTuple):
    """Digests of one batch in order ("" where a file failed), the failures, and files that changed while read."""

    digests: list[str]
    errors: list[tuple[int, int, str]]  # (index in the batch, errno, message)
    unstable: list[int]  # indices whose byte count differed from the size given: never cache those


class Reader:
    """One reusable buffer, and the reading of an open file into a digest (see the module docstring on sizes)."""

    def __init__(self) -> None:
        self.buffer = bytearray(BUFFER_SIZE)
        self.view = memoryview(self.buffer)
        self.buffers = [self.buffer]

    def digest(self, fd: int, expected: int = -1) -> tuple[str, int]:
        """The digest of what ``fd`` holds from here on, and how many bytes that was. ``expected`` (a size from
        a stat) saves the read that finds EOF; a short read is not EOF on every filesystem, so only then."""
        n = os.readv(fd, self.buffers)
        if n == expected and n < BUFFER_SIZE:
            return xxhash.xxh3_128_hexdigest(self.view[:n]), n  # the common small file: one read, one call
        h = xxhash.xxh3_128()
        total = 0
        while n:
            h.update(self.view[:n])
            total += n
            n = os.readv(fd, self.buffers)
        return h.hexdigest(), total


def hash_batch(paths: Sequence[str], sizes: Sequence[int] | None = None) -> BatchResult:
    """Hash files one after another with one buffer. ``sizes`` (from a stat) saves the read that finds EOF."""
    reader = Reader()
    digests: list[str] = []
    errors: list[tuple[int, int, str]] = []
    unstable: list[int] = []
    for i, path in enumerate(paths):
        expected = -1 if sizes is None else sizes[i]
        try:
            fd = os.open(path, OPEN_FLAGS)
            try:
                digest, total = reader.digest(fd, expected)
            finally:
                os.close(fd)
        except OSError as exc:
            digests.append("")
            errors.append((i, exc.errno or 0, exc.strerror or str(exc)))
            continue
        digests.append(digest)
        if expected >= 0 and total != expected:
            unstable.append(i)
    return BatchResult(digests, errors, unstable)


def hash_many(paths: Sequence[str], sizes: Sequence[int] | None = None, *, workers: int | None = None) -> BatchResult:
    """Hash ``paths`` (results in input order), spreading the work over processes when that pays off."""
    count = worker_count(workers)
    batches = plan_batches(sizes if sizes is not None else [0] * len(paths), count)
    if len(batches) < 2:
        return hash_batch(paths, sizes)
    try:
        return _hash_in_pool(paths, sizes, batches, count)
    except POOL_ERRORS as exc:
        log.info("hashing in this process instead of %d workers (%s)", count, exc)
        return hash_batch(paths, sizes)


def plan_batches(sizes: Sequence[int], workers: int) -> list[range]:
    """Consecutive index ranges of roughly equal cost; a single range when a pool would not pay off."""
    costs = [_SECONDS_PER_FILE + size * _SECONDS_PER_BYTE for size in sizes]
    total = sum(costs)
    largest = max(costs, default=0.0)
    # a pool saves at most what the other workers take off this one; one big file cannot be split
    saving = min(total - total / workers, total - largest)
    if workers < 2 or saving <= _POOL_START_SECONDS:
        return [range(len(sizes))] if sizes else []
    target = total / (workers * _TASKS_PER_WORKER)
    batches: list[range] = []
    start, acc = 0, 0.0
    for i, cost in enumerate(costs):
        acc += cost
        if acc >= target:
            batches.append(range(start, i + 1))
            start, acc = i + 1, 0.0
    if start < len(costs):
        batches.append(range(start, len(costs)))
    return batches


def _hash_in_pool(paths: Sequence[str], sizes: Sequence[int] | None, batches: list[range], workers: int) -> BatchResult:
    digests: list[str] = []
    errors: list[tuple[int, int, str]] = []
    unstable: list[int] = []
    with fork_pool(min(workers, len(batches))) as pool:
        futures = [
            pool.submit(hash_batch, paths[r.start : r.stop], None if sizes is None else sizes[r.start : r.stop])
            for r in batches
        ]
        for r, future in zip(batches, futures, strict=True):
            part = future.result()
            digests.extend(part.digests)
            errors.extend((r.start + i, code, msg) for i, code, msg in part.errors)
            unstable.extend(r.start + i for i in part.unstable)
    return BatchResult(digests, errors, unstable)


def raise_first_error(paths: Sequence[str], errors: Sequence[tuple[int, int, str]]) -> None:
    """Raise the failure of the first failed file as the ``OSError`` subclass its errno maps to."""
    if errors:
        index, code, message = min(errors)
        raise OSError(code, message, paths[index])
