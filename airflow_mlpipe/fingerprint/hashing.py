"""Fast content hashes (XXH3-128): one file, many files, bytes.

XXH3 is not a cryptographic hash; it identifies content, it does not defend against an adversary who can write
to your datastore (who could change the data anyway). A digest is the 32-character hex form of XXH3-128 over the
file's bytes, whichever way the bytes were read, so digests from any version of this module compare equal.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

import xxhash

from airflow_mlpipe.fingerprint.batch import hash_batch, raise_first_error
from airflow_mlpipe.fingerprint.local import folder_digests
from airflow_mlpipe.fingerprint.statcache import FolderStats, StatCache, StatKey, resolve_cache, stat_key

HASH_NAME = "xxh3"


def hash_bytes(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def hash_file(path: str | os.PathLike[str]) -> str:
    """The XXH3-128 hex digest of a file's bytes, read in chunks (bounded memory)."""
    text = os.fspath(path)
    result = hash_batch([text])
    raise_first_error([text], result.errors)
    return result.digests[0]


def hash_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    cache: StatCache | bool = False,
    workers: int | None = None,
) -> list[str]:
    """Digests of many local files, in the order given.

    Large jobs are spread over ``workers`` processes (default: one per CPU, at most 8); small ones stay in this
    process. With ``cache`` (``True`` for the default stat cache, or a ``StatCache``) a file whose stat is unchanged
    since it was last hashed is not read. Raises ``OSError`` (``FileNotFoundError``, ``PermissionError``, ...)
    naming the first file that cannot be read, and ``IsADirectoryError`` for a folder.
    """
    texts = [os.fspath(p) for p in paths]
    store = resolve_cache(cache)
    started_ns = store.clock() if store is not None else 0  # before the stats: see StatCache on racy entries
    names: dict[str, list[str]] = {}
    keys: dict[str, list[StatKey]] = {}
    spots: list[tuple[str, int]] = []
    cwd = os.getcwd()
    absolute: dict[str, str] = {}
    for text in texts:
        head, name = os.path.split(text)
        folder = absolute.get(head)
        if folder is None:
            # joined, not normalised: "link/../x" must still go through the link, as open() would
            folder = absolute[head] = os.path.join(cwd, head) if head else cwd
        folder_names = names.setdefault(folder, [])
        spots.append((folder, len(folder_names)))
        folder_names.append(name)
        keys.setdefault(folder, []).append(_regular_file_key(text))
    folders = {folder: FolderStats(names[folder], keys[folder]) for folder in names}
    digests = folder_digests(folders, store, started_ns=started_ns, workers=workers)
    return [digests[folder].digests[i] for folder, i in spots]


def _regular_file_key(path: str) -> StatKey:
    st = os.stat(path)
    if stat.S_ISREG(st.st_mode):
        return stat_key(st)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", path)
    raise OSError(errno.EINVAL, "not a regular file (a FIFO, socket or device) and cannot be hashed", path)
