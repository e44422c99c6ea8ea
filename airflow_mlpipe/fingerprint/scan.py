"""Fingerprint every file of a local folder: walk, stat-cache lookup and hashing, on several processes when large.

On a large tree even the warm check (nothing changed, nothing read) is bound by one ``stat`` per file, so the
whole scan is split, not only the reading: this process walks until it has seen ``PARALLEL_MIN_FILES`` files, then
hands the folders left to forked workers, each of which walks its share, looks it up in the stat cache, hashes
what is new and records it, and sends back names, sizes, digests and executable bits. Meanwhile this process
finishes its own share. A small tree never starts a process.

A folder the stat cache holds nothing for (a first scan) is read while it is walked: each file is opened by name
in its folder and its key taken from the open file, which saves the stat by path a look-up would need.
"""

from __future__ import annotations

import gc
import logging
import marshal
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple

import xxhash

from airflow_mlpipe.exceptions import UnreadableFileError
from airflow_mlpipe.fingerprint.local import folder_digests
from airflow_mlpipe.fingerprint.pool import POOL_ERRORS, fork_pool, worker_count
from airflow_mlpipe.fingerprint.statcache import FolderStats, StatCache
from airflow_mlpipe.fingerprint.walk import Pending, Walk, Walker, unreadable_error

log = logging.getLogger(__name__)

PARALLEL_MIN_FILES = 4000  # about 15 ms of walking: below that, starting processes costs more than it saves
_SIZE = itemgetter(0)
_TASKS_PER_WORKER = 8  # folders are handed out in this many parts per worker, to even out unequal sub-trees


class FolderResult(NamedTuple):
    """The kept files directly in one folder, as parallel lists (cheap to send between processes), and the
    folder's signature when the stat cache holds it whole."""

    rel: str
    names: list[str]
    sizes: list[int]
    digests: list[str]
    executable: list[bool]
    signature: bytes | None


@dataclass
class ScanResult:
    folders: list[FolderResult] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # relative path -> link text
    followed: dict[str, str] = field(default_factory=dict)  # a followed link's relative path -> its target's real path

    def signature(self) -> bytes | None:
        """What the whole tree looked like (every folder's signature, every link and where each followed link
        leads), or None when some folder is not held whole by the stat cache: equal signatures mean an unchanged
        tree."""
        if any(part.signature is None for part in self.folders):
            return None
        folders = sorted((part.rel, part.signature) for part in self.folders)
        links = (sorted(self.links.items()), sorted(self.followed.items()))
        return xxhash.xxh3_128_digest(marshal.dumps((folders, links), 2))


@dataclass(frozen=True)
class _Scan:
    """What every process of one scan shares (sent to the workers)."""

    root: str
    shown: str
    ignore_file_names: tuple[str, ...]
    cache: StatCache | None
    started_ns: int
    cached_folders: frozenset[str]  # folders the cache holds anything for: the others are read while walked

    def walker(self, pending: Sequence[Pending] | None = None) -> Walker:
        return Walker(
            self.root,
            ignore_file_names=self.ignore_file_names,
            shown=self.shown,
            pending=pending,
            hash_while_walking=self.uncached,
        )

    def uncached(self, folder: str) -> bool:
        return folder not in self.cached_folders


def scan_folder(
    root: str,
    *,
    shown: str,
    ignore_file_names: Sequence[str],
    cache: StatCache | None,
    started_ns: int,
    workers: int | None = None,
) -> ScanResult:
    """Every kept file under ``root`` (absolute, real path) with its digest. ``shown`` names it in errors."""
    cached_folders = cache.folders_under(root) if cache is not None else frozenset()
    scan = _Scan(root, shown, tuple(ignore_file_names), cache, started_ns, cached_folders)
    count = worker_count(workers)
    walker = scan.walker()
    walker.run(until_files=PARALLEL_MIN_FILES if count > 1 else None)
    if walker.pending:
        try:
            return _scan_in_pool(scan, walker, count)
        except UnreadableFileError:
            raise
        except POOL_ERRORS as exc:
            log.info("scanning %s in this process instead of %d workers (%s)", shown, count, exc)
            walker.run()
    return _digest_walk(scan, walker.walk, workers=count)


def _scan_in_pool(scan: _Scan, walker: Walker, count: int) -> ScanResult:
    parts = _split(walker.pending, count * _TASKS_PER_WORKER)
    with fork_pool(min(count, len(parts))) as pool:
        futures = [pool.submit(_scan_part, scan, part) for part in parts]
        result = _digest_walk(scan, walker.walk, workers=1)  # this process's share, meanwhile
        for future in futures:
            part_result = future.result()
            result.folders += part_result.folders
            result.links.update(part_result.links)
            result.followed.update(part_result.followed)
    walker.pending.clear()
    return result


def _scan_part(scan: _Scan, pending: Sequence[Pending]) -> ScanResult:
    """In a worker: walk some folders (and everything under them) and fingerprint their files."""
    with paused_gc():
        return _digest_walk(scan, scan.walker(pending).run(), workers=1)


def _digest_walk(scan: _Scan, walk: Walk, *, workers: int) -> ScanResult:
    folders = {folder: FolderStats(ff.names, ff.keys) for folder, ff in walk.folders.items()}
    hashed = {f: (ff.digests, ff.unstable) for f, ff in walk.folders.items() if ff.digests is not None}
    try:
        digests = folder_digests(
            folders, scan.cache, started_ns=scan.started_ns, complete=True, workers=workers, hashed=hashed
        )
    except OSError as exc:
        rel = os.path.relpath(exc.filename or walk.root, walk.root).replace(os.sep, "/")
        raise unreadable_error(scan.shown, rel, exc) from exc
    result = ScanResult(links=dict(walk.links), followed=dict(walk.followed))
    for folder, ff in walk.folders.items():
        sizes = list(map(_SIZE, ff.keys))
        found = digests[folder]
        result.folders.append(FolderResult(ff.rel, ff.names, sizes, found.digests, ff.executable, found.signature))
    return result


def _split(pending: Sequence[Pending], parts: int) -> list[list[Pending]]:
    """``pending`` in at most ``parts`` interleaved parts (neighbouring folders are often alike in size)."""
    return [list(pending[i::parts]) for i in range(min(parts, len(pending)))]


@contextmanager
def paused_gc() -> Iterator[None]:
    """No garbage collection while a large tree's many small tuples are made: they hold no cycles, and the
    collector would otherwise scan them over and over (it doubles the time of building a 100,000-file tree)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
