"""Fingerprints of a step's extra ``hash_paths``: files or folders outside (or inside) its source folder.

Each entry is named in the tree as it was written, normalised (``lib/util.py``, ``../shared``, ``/opt/common``), and
a folder's files as ``<entry>/<path inside it>``: the key then reads the same on every machine for relative
entries, and the explainer can say "hash path ../shared/util.py changed". Folders follow the same ignore rules and
symlink handling as a source snapshot; a link named as an entry is followed, since the user asked for it.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence

from airflow_mlpipe.exceptions import FingerprintPathNotFoundError, UnreadableFileError
from airflow_mlpipe.fingerprint.hashing import hash_files
from airflow_mlpipe.fingerprint.ignore import DEFAULT_IGNORE_FILE_NAMES
from airflow_mlpipe.fingerprint.scan import paused_gc, scan_folder
from airflow_mlpipe.fingerprint.statcache import StatCache, resolve_cache
from airflow_mlpipe.fingerprint.tree import Tree, TreeEntry, tree_of


def scan_hash_paths(
    source_directory: str | os.PathLike[str],
    hash_paths: Sequence[str | os.PathLike[str]],
    *,
    ignore_file_names: Sequence[str] = DEFAULT_IGNORE_FILE_NAMES,
    cache: StatCache | bool = True,
    workers: int | None = None,
) -> Tree:
    """One tree of every file the ``hash_paths`` entries name (relative to ``source_directory``, or absolute).

    Raises ``FingerprintPathNotFoundError`` naming an entry that does not exist, and ``UnreadableFileError`` naming
    a file that cannot be read.
    """
    store = resolve_cache(cache)
    started_ns = store.clock() if store is not None else 0
    base = os.fspath(source_directory)
    entries: dict[str, TreeEntry] = {}
    for raw in hash_paths:
        written = os.fspath(raw)
        key = posixpath.normpath(written.replace(os.sep, "/"))
        full = os.path.join(base, written)  # an absolute entry stays as it is
        try:
            st = os.stat(full)
        except FileNotFoundError:
            raise FingerprintPathNotFoundError(
                f"hash_paths entry {written!r} does not exist (looked for {full!r}); give a file or folder relative "
                f"to source_directory {base!r}, or an absolute path"
            ) from None
        except OSError as exc:
            raise _unreadable(written, full, exc) from exc
        if stat.S_ISDIR(st.st_mode):
            with paused_gc():
                scanned = scan_folder(
                    os.path.realpath(full),
                    shown=full,
                    ignore_file_names=ignore_file_names,
                    cache=store,
                    started_ns=started_ns,
                    workers=workers,
                )
            entries.update((f"{key}/{p}", e) for p, e in tree_of(scanned).entries.items())
        else:
            entries[key] = _file_entry(written, full, st, store)
    return Tree(entries)


def _file_entry(written: str, full: str, st: os.stat_result, cache: StatCache | None) -> TreeEntry:
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableFileError(
            f"hash_paths entry {written!r} ({full!r}) is not a regular file or folder (a FIFO, socket or device); "
            "remove it from hash_paths"
        )
    try:
        (digest,) = hash_files([full], cache=cache if cache is not None else False)
    except OSError as exc:
        raise _unreadable(written, full, exc) from exc
    return TreeEntry(st.st_size, digest, bool(st.st_mode & stat.S_IXUSR))


def _unreadable(written: str, full: str, exc: OSError) -> UnreadableFileError:
    reason = (exc.strerror or str(exc)).lower()
    return UnreadableFileError(f"cannot read hash_paths entry {written!r} ({full!r}): {reason}; make it readable")
