"""Digests of local files grouped by folder: cached digests where the stat matches, the rest hashed in batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from airflow_mlpipe.fingerprint.batch import hash_many, raise_first_error
from airflow_mlpipe.fingerprint.statcache import FolderDigests, FolderStats, StatCache


def folder_digests(
    folders: Mapping[str, FolderStats],
    cache: StatCache | None,
    *,
    started_ns: int,
    complete: bool = False,
    workers: int | None = None,
) -> dict[str, list[str]]:
    """The digest of every file, by folder and in the order given; raises the first ``OSError`` of a read.

    Each key must come from a stat taken before the file is read, and ``started_ns`` from the clock before the
    stats (see ``StatCache`` on racy entries). ``complete`` says the lists hold every file of each folder: the
    cache then forgets files that are gone.
    """
    found: Mapping[str, Sequence[str | None]] = (
        cache.lookup(folders) if cache is not None else {f: [None] * len(s.names) for f, s in folders.items()}
    )
    paths: list[str] = []
    sizes: list[int] = []
    where: list[tuple[str, int]] = []
    for folder, (names, keys) in folders.items():
        if None not in found[folder]:
            continue
        base = folder.rstrip("/") + "/"
        for i, digest in enumerate(found[folder]):
            if digest is None:
                paths.append(base + names[i])
                sizes.append(keys[i][0])
                where.append((folder, i))
    if not paths:
        return {folder: [d or "" for d in ds] for folder, ds in found.items()}  # all cached
    result = hash_many(paths, sizes, workers=workers)
    raise_first_error(paths, result.errors)
    digests = {folder: list(found[folder]) for folder in folders}
    for (folder, i), digest in zip(where, result.digests, strict=True):
        digests[folder][i] = digest
    if cache is not None:
        _remember(cache, folders, found, digests, {where[i] for i in result.unstable}, started_ns, complete)
    return {folder: [d or "" for d in ds] for folder, ds in digests.items()}


def _remember(
    cache: StatCache,
    folders: Mapping[str, FolderStats],
    found: Mapping[str, Sequence[str | None]],
    digests: Mapping[str, Sequence[str | None]],
    unstable: set[tuple[str, int]],
    started_ns: int,
    complete: bool,
) -> None:
    """Record the files just hashed; with ``complete``, rewrite each such folder whole (hits too), so files that
    are gone drop out of the cache."""
    records: dict[str, FolderDigests] = {}
    for folder, (names, keys) in folders.items():
        if None not in found[folder]:
            continue  # nothing new in this folder
        keep = [i for i, hit in enumerate(found[folder]) if (folder, i) not in unstable and (hit is None or complete)]
        ds = digests[folder]
        records[folder] = FolderDigests([names[i] for i in keep], [keys[i] for i in keep], [ds[i] or "" for i in keep])
    cache.record(records, started_ns=started_ns, complete=complete)
