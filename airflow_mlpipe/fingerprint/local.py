"""Digests of local files grouped by folder: cached digests where the stat matches, the rest hashed in batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from airflow_mlpipe.fingerprint.batch import hash_many, raise_first_error
from airflow_mlpipe.fingerprint.statcache import StatCache, StatKey

# A folder's files as (name, stat key): the key must come from a stat taken before the file is read.
Folders = Mapping[str, Sequence[tuple[str, StatKey]]]


def folder_digests(
    folders: Folders,
    cache: StatCache | None,
    *,
    started_ns: int,
    complete: bool = False,
    workers: int | None = None,
) -> dict[str, list[str]]:
    """The digest of every file, by folder and in the order given; raises the first ``OSError`` of a read.

    ``started_ns`` is the clock reading taken before the stats (see ``StatCache`` on racy entries). ``complete``
    says the lists hold every file of each folder: the cache then forgets files that are gone.
    """
    found: Mapping[str, Sequence[str | None]] = (
        cache.lookup(folders) if cache is not None else {f: [None] * len(files) for f, files in folders.items()}
    )
    paths: list[str] = []
    sizes: list[int] = []
    where: list[tuple[str, int]] = []
    for folder, files in folders.items():
        for i, digest in enumerate(found[folder]):
            if digest is None:
                name, key = files[i]
                paths.append(f"{folder.rstrip('/')}/{name}")
                sizes.append(key[0])
                where.append((folder, i))
    result = hash_many(paths, sizes, workers=workers)
    raise_first_error(paths, result.errors)
    digests = {folder: list(found[folder]) for folder in folders}
    for (folder, i), digest in zip(where, result.digests, strict=True):
        digests[folder][i] = digest
    if cache is not None and where:
        fresh = set(where).difference(where[i] for i in result.unstable)
        records = {
            folder: [
                (name, key, digests[folder][i] or "")
                for i, (name, key) in enumerate(folders[folder])
                if (folder, i) in fresh or (complete and found[folder][i] is not None)
            ]
            for folder in {folder for folder, _ in where}
        }
        # complete: the whole folder is written (hits too), so files that are gone drop out of the cache
        cache.record(records, started_ns=started_ns, complete=complete)
    return {folder: [d or "" for d in ds] for folder, ds in digests.items()}
