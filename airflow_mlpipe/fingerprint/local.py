"""Digests of local files grouped by folder: cached digests where the stat matches, the rest hashed in batches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from airflow_mlpipe.fingerprint.batch import hash_many, raise_first_error
from airflow_mlpipe.fingerprint.statcache import FolderDigests, FolderStats, Lookup, StatCache


class Digested(NamedTuple):
    """A folder's digests in the order given, and its signature when the cache holds the whole folder."""

    digests: list[str]
    signature: bytes | None


def folder_digests(
    folders: Mapping[str, FolderStats],
    cache: StatCache | None,
    *,
    started_ns: int,
    complete: bool = False,
    workers: int | None = None,
    hashed: Mapping[str, tuple[list[str], list[int]]] | None = None,
) -> dict[str, Digested]:
    """The digest of every file, by folder and in the order given; raises the first ``OSError`` of a read.

    Each key must come from a stat taken before the file is read, and ``started_ns`` from the clock before the
    stats (see ``StatCache`` on racy entries). ``complete`` says the lists hold every file of each folder, in
    listing order: the cache then keeps the folder whole and forgets files that are gone. ``hashed``: folders
    whose files were read already (digests, and the indices of files that changed while read); they are only
    recorded.
    """
    hashed = hashed or {}
    unlooked = {f: s for f, s in folders.items() if f not in hashed}
    found: dict[str, Lookup] = (
        cache.lookup(unlooked)
        if cache is not None
        else {f: Lookup([None] * len(s.names), None) for f, s in unlooked.items()}
    )
    found.update((f, Lookup(list(ds), None)) for f, (ds, _) in hashed.items())
    if cache is not None and hashed:
        cache.count(misses=sum(len(ds) for ds, _ in hashed.values()))
    changed = {(f, i) for f, (_, unstable) in hashed.items() for i in unstable}
    paths: list[str] = []
    sizes: list[int] = []
    where: list[tuple[str, int]] = []
    for folder, (names, keys) in folders.items():
        if found[folder].signature is not None or None not in found[folder].digests:
            continue
        base = folder.rstrip("/") + "/"
        for i, digest in enumerate(found[folder].digests):
            if digest is None:
                paths.append(base + names[i])
                sizes.append(keys[i][0])
                where.append((folder, i))
    digests = {folder: found[folder].digests for folder in folders}
    signatures = {folder: found[folder].signature for folder in folders}
    if paths:
        result = hash_many(paths, sizes, workers=workers)
        raise_first_error(paths, result.errors)
        digests = {folder: list(ds) for folder, ds in digests.items()}
        for (folder, i), digest in zip(where, result.digests, strict=True):
            digests[folder][i] = digest
        changed.update(where[i] for i in result.unstable)
    if cache is not None and (paths or complete):
        # with ``complete``, also the folders found file by file (a file renamed, or listed in another order), so
        # that the next look is a signature match
        records = _records(folders, found, digests, changed, complete)
        if records:
            signatures.update(cache.record(records, started_ns=started_ns))
    return {folder: Digested([d or "" for d in ds], signatures[folder]) for folder, ds in digests.items()}


def _records(
    folders: Mapping[str, FolderStats],
    found: Mapping[str, Lookup],
    digests: Mapping[str, list[str | None]],
    unstable: set[tuple[str, int]],
    complete: bool,
) -> dict[str, FolderDigests]:
    """What to record for folders not found whole: the files just hashed, or with ``complete`` every file."""
    records: dict[str, FolderDigests] = {}
    for folder, (names, keys) in folders.items():
        lookup = found[folder]
        if lookup.signature is not None or (not complete and None not in lookup.digests):
            continue
        keep = [i for i, hit in enumerate(lookup.digests) if (folder, i) not in unstable and (hit is None or complete)]
        whole = complete and len(keep) == len(names)  # a file that changed while read leaves the folder partial
        ds = digests[folder]
        records[folder] = FolderDigests(
            [names[i] for i in keep], [keys[i] for i in keep], [ds[i] or "" for i in keep], whole
        )
    return records
