"""Fingerprint every file of a local folder: walk, stat-cache lookup and hashing, on several processes when large.

On a large tree even the warm check (nothing changed, nothing read) is bound by one ``stat`` per file, so the
whole scan is split, not only the reading: this process walks until it has seen ``PARALLEL_MIN_FILES`` files, then
hands the folders left to forked workers, each of which walks its share, looks it up in the stat cache, hashes
what is new and records it, and sends back names, sizes, digests and executable bits. Meanwhile this process
finishes its own share. A small tree never starts a process.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple

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
    """The kept files directly in one folder, as parallel lists (cheap to send between processes)."""

    rel: str
    names: list[str]
    sizes: list[int]
    digests: list[str]
    executable: list[bool]


@dataclass
class ScanResult:
    folders: list[FolderResult] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # relative path -> link text


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
    count = worker_count(workers)
    walker = Walker(root, ignore_file_names=ignore_file_names, shown=shown)
    walker.run(until_files=PARALLEL_MIN_FILES if count > 1 else None)
    if walker.pending:
        try:
            return _scan_in_pool(walker, shown, cache, started_ns, count)
        except UnreadableFileError:
            raise
        except POOL_ERRORS as exc:
            log.info("scanning %s in this process instead of %d workers (%s)", shown, count, exc)
            walker.run()
    return _digest_walk(walker.walk, shown, cache, started_ns, workers=count)


def _scan_in_pool(walker: Walker, shown: str, cache: StatCache | None, started_ns: int, count: int) -> ScanResult:
    parts = _split(walker.pending, count * _TASKS_PER_WORKER)
    root, names = walker.walk.root, walker.ignore_file_names
    with fork_pool(min(count, len(parts))) as pool:
        futures = [pool.submit(_scan_part, root, shown, names, part, cache, started_ns) for part in parts]
        result = _digest_walk(walker.walk, shown, cache, started_ns, workers=1)  # this process's share, meanwhile
        for future in futures:
            part_result = future.result()
            result.folders += part_result.folders
            result.links.update(part_result.links)
    walker.pending.clear()
    return result


def _scan_part(
    root: str,
    shown: str,
    ignore_file_names: Sequence[str],
    pending: Sequence[Pending],
    cache: StatCache | None,
    started_ns: int,
) -> ScanResult:
    """In a worker: walk some folders (and everything under them) and fingerprint their files."""
    with paused_gc():
        walk = Walker(root, ignore_file_names=ignore_file_names, shown=shown, pending=pending).run()
        return _digest_walk(walk, shown, cache, started_ns, workers=1)


def _digest_walk(walk: Walk, shown: str, cache: StatCache | None, started_ns: int, *, workers: int) -> ScanResult:
    folders = {folder: FolderStats(ff.names, ff.keys) for folder, ff in walk.folders.items()}
    try:
        digests = folder_digests(folders, cache, started_ns=started_ns, complete=True, workers=workers)
    except OSError as exc:
        rel = os.path.relpath(exc.filename or walk.root, walk.root).replace(os.sep, "/")
        raise unreadable_error(shown, rel, exc) from exc
    result = ScanResult(links=dict(walk.links))
    for folder, ff in walk.folders.items():
        sizes = list(map(_SIZE, ff.keys))
        result.folders.append(FolderResult(ff.rel, ff.names, sizes, digests[folder], ff.executable))
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
