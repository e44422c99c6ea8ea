"""Check that local copies of dataset files hold exactly the bytes their manifest entries name.

A file checked before it is downloaded can still change while it is read. After the copy, each one is checked
again by the strongest means its identity allows: our XXH3 and a store-kept MD5 are computed over the local copy;
an ETag (which need not be a content hash) is read from the store again, and must be unchanged since planning.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Sequence

from airflow_mlpipe.datasets.manifest import ManifestEntry
from airflow_mlpipe.exceptions import DatasetError
from airflow_mlpipe.fingerprint.hashing import HASH_NAME, hash_files
from airflow_mlpipe.fingerprint.identity import store_kept_identity
from airflow_mlpipe.storage.datastore import Datastore

# Up to this many files with ETags are checked one request each; more are checked with one listing.
_INFO_LIMIT = 20


def verify_copies(pairs: Sequence[tuple[ManifestEntry, str]], *, what: str = "input") -> None:
    """Raise ``DatasetError`` naming the files whose local copy (``pairs``: entry, local path) differs."""
    changed: list[str] = []
    ours = [(e, p) for e, p in pairs if e.identity.kind == HASH_NAME]
    md5s = [(e, p) for e, p in pairs if e.identity.kind == "md5"]
    etags = [(e, p) for e, p in pairs if e.identity.kind not in (HASH_NAME, "md5")]
    for entry, local in pairs:
        if os.path.getsize(local) != entry.identity.size:
            changed.append(entry.path)
    if ours:
        digests = hash_files([p for _, p in ours], cache=False)
        changed += [e.path for (e, _), d in zip(ours, digests, strict=True) if d != e.identity.value]
    changed += [e.path for e, p in md5s if _md5(p) != e.identity.value]
    changed += _changed_at_store([e for e, _ in etags])
    if changed:
        listing = ", ".join(sorted(set(changed))[:10])
        raise DatasetError(
            f"{what} files changed while they were being read: {listing}; the step's outputs would not match its "
            "reuse key, so it stops here (a retry plans again with the new files)"
        )


def _md5(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _changed_at_store(entries: Sequence[ManifestEntry]) -> list[str]:
    by_store: dict[str, list[ManifestEntry]] = {}
    for entry in entries:
        by_store.setdefault(entry.datastore, []).append(entry)
    changed = []
    for name, group in by_store.items():
        store = Datastore.get(name)
        if len(group) <= _INFO_LIMIT:
            infos = {}
            for e in group:
                try:
                    infos[e.path] = store.info(e.path)
                except FileNotFoundError:
                    changed.append(e.path)
        else:
            base = posixpath.commonpath([e.path for e in group]) if len(group) > 1 else ""
            infos = store.list(base, recursive=True, detail=True)
        for e in group:
            info = infos.get(e.path)
            kept = store_kept_identity(info) if info is not None else None
            if kept != (e.identity.kind, e.identity.value):
                changed.append(e.path)
    return changed
