"""A local cache of content digests keyed by a file's exact stat, so an unchanged file is not read again.

A cached digest is used only when the file's path, size, ``mtime_ns``, inode and ``ctime_ns`` all equal what they
were when it was hashed; a touched file (new mtime) is re-read and, if its bytes are the same, gets the same digest.
``ctime`` cannot be set by users (``os.utime`` changes it too), so new bytes written at the same size with the old
mtime restored are still noticed.

The "racy" case (as git calls it): a file rewritten within the timestamp granularity of the moment it was hashed
keeps its stat while its bytes change. Entries whose ``mtime`` or ``ctime`` lies within ``racy_window_ns`` of the
start of hashing are therefore never cached; such a file is simply read again next time.

Storage (see ``cachedb``): one SQLite file, default ``$MLPIPE_HOME/cache/stat-cache.sqlite3``, with a row per
folder: the names and stat keys of its files, their digests (checksummed ``marshal`` blobs), and a *signature*,
the XXH3-128 of the names and keys in listing order, kept only when every file of the folder was cached. A folder
whose listing has that signature again is unchanged as a whole: its digests are taken without a look at each
file. A second table keeps, per scanned tree, the signature of all its folders and the tree's digest, so an
unchanged tree's digest is not recomputed either.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import xxhash

from airflow_mlpipe.fingerprint.cachedb import CacheDB

# (size, mtime_ns, inode, ctime_ns): a plain tuple, compared in C.
StatKey = tuple[int, int, int, int]

RACY_WINDOW_NS = 2_000_000_000  # coarser than any common filesystem's timestamps (FAT: 2 s)
UNUSED_ROW_TTL_S = 30 * 24 * 3600  # rows not used for this long are dropped
_TOUCH_AFTER_S = 24 * 3600  # mark a row as used at most once a day: keeps the warm path read-only
_MAX_SQL_PARAMS = 500
_CHECKSUM_BYTES = 8
_MARSHAL_VERSION = 2  # no back-references: the same values always give the same bytes (signatures rely on it)


class FolderStats(NamedTuple):
    """Files of one folder to look up: names and their stat keys, in parallel lists (listing order)."""

    names: Sequence[str]
    keys: Sequence[StatKey]


class FolderDigests(NamedTuple):
    """Files of one folder to remember: names, the stat keys taken before reading, and digests.

    ``complete``: these are all the folder's files, in listing order; the row is then replaced (files that are
    gone are forgotten) and, when every file can be cached, the folder is kept whole, with its signature.
    """

    names: Sequence[str]
    keys: Sequence[StatKey]
    digests: Sequence[str]
    complete: bool = False


class Lookup(NamedTuple):
    """A folder's cached digests (None: a miss), and its signature when the whole folder was found unchanged."""

    digests: list[str | None]
    signature: bytes | None


class _Row(NamedTuple):
    signature: bytes | None
    names: list[str]
    keys: list[StatKey]
    digests: list[str]
    complete: bool


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def signature(names: Sequence[str], keys: Sequence[StatKey]) -> bytes:
    """What a folder's listing looked like: equal only when every name and stat key is equal, in the same order."""
    return xxhash.xxh3_128_digest(marshal.dumps((list(names), list(keys)), _MARSHAL_VERSION))


def default_cache_path() -> Path:
    from airflow_mlpipe.storage.resolve import mlpipe_home

    return mlpipe_home() / "cache" / "stat-cache.sqlite3"


class StatCache:
    """Digests of local files by exact stat; see the module docstring for what is trusted and why."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        racy_window_ns: int = RACY_WINDOW_NS,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = Path(path)
        self.racy_window_ns = racy_window_ns
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._db = CacheDB(self.path)
        self._pruned = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StatCache({str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        # sent to worker processes: settings only; each process keeps its own lock, counters and warnings
        return {"path": self.path, "racy_window_ns": self.racy_window_ns, "clock": self.clock}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], racy_window_ns=state["racy_window_ns"], clock=state["clock"])  # type: ignore[misc]

    def clear(self) -> None:
        """Forget every entry (the file is removed and made again on next use)."""
        self._db.clear()

    # -- files ----------------------------------------------------------------------------------------------------
    def lookup(self, folders: Mapping[str, FolderStats]) -> dict[str, Lookup]:
        """For each absolute folder, the cached digest of each file named, or None where the stat differs."""
        now_signatures = {folder: signature(*files) for folder, files in folders.items()}
        rows = self._load(list(folders), now_signatures)
        out: dict[str, Lookup] = {}
        hits = misses = 0
        for folder, (names, keys) in folders.items():
            row = rows.get(folder)
            if row is None:
                found: list[str | None] = [None] * len(names)
            elif isinstance(row, list):  # the same signature: the whole folder as it was
                found = list(row)
            else:
                known_keys, known_digests = row
                get_key, get_digest = known_keys.get, known_digests.get
                found = [get_digest(n) if get_key(n) == k else None for n, k in zip(names, keys, strict=True)]
            missed = found.count(None)
            hits, misses = hits + len(found) - missed, misses + missed
            out[folder] = Lookup(found, now_signatures[folder] if isinstance(row, list) else None)
        self.count(hits=hits, misses=misses)
        return out

    def count(self, *, hits: int = 0, misses: int = 0) -> None:
        """Add to ``hits`` (files not read thanks to the cache) and ``misses`` (files read); per process."""
        with self._lock:
            self.hits += hits
            self.misses += misses

    def _load(
        self, folders: list[str], now_signatures: Mapping[str, bytes]
    ) -> dict[str, list[str] | tuple[dict[str, StatKey], dict[str, str]]]:
        """Per folder: its digest list when the signature matches (nothing else decoded), else its entries."""
        now_s = self.clock() // 1_000_000_000

        def load(db: sqlite3.Connection) -> dict[str, list[str] | tuple[dict[str, StatKey], dict[str, str]]]:
            found: dict[str, list[str] | tuple[dict[str, StatKey], dict[str, str]]] = {}
            stale: list[tuple[int, str]] = []
            for folder, used_s, sig, stats, digests in _select(db, folders):
                decoded_digests = self._decode(folder, digests)
                if not isinstance(decoded_digests, list):
                    continue
                if sig is not None and sig == now_signatures[folder]:
                    found[folder] = decoded_digests
                else:
                    decoded = self._decode(folder, stats)
                    if not (isinstance(decoded, tuple) and len(decoded) == 2):
                        continue
                    names, keys = decoded
                    found[folder] = (
                        dict(zip(names, keys, strict=True)),
                        dict(zip(names, decoded_digests, strict=True)),
                    )
                if now_s - used_s > _TOUCH_AFTER_S:
                    stale.append((now_s, folder))
            if stale:
                _touch(db, "UPDATE folders SET used_s = ? WHERE folder = ?", stale)
            return found

        return self._db.run(load, {}) if folders else {}

    def record(self, folders: Mapping[str, FolderDigests], *, started_ns: int) -> dict[str, bytes]:
        """Remember the digests of files stat'ed from ``started_ns`` on; returns the signatures of the folders kept
        whole. Entries in the racy window are left out (see the module docstring)."""
        newest_ok = started_ns - self.racy_window_ns
        rows: dict[str, _Row] = {}
        for folder, (names, keys, digests, complete) in folders.items():
            keep = [i for i, k in enumerate(keys) if k[1] < newest_ok and k[3] < newest_ok]
            whole = complete and len(keep) == len(names)
            if keep or complete:
                rows[folder] = _Row(
                    signature(names, keys) if whole else None,
                    [names[i] for i in keep],
                    [keys[i] for i in keep],
                    [digests[i] for i in keep],
                    complete,
                )
        if not rows:
            return {}
        now_s = self.clock() // 1_000_000_000

        def write(db: sqlite3.Connection) -> dict[str, bytes]:
            with db:
                db.execute("BEGIN IMMEDIATE")  # read, merge and write under the write lock: no update is lost
                merged = {**self._merge(db, {f: r for f, r in rows.items() if not r.complete})}
                merged.update((f, r) for f, r in rows.items() if r.complete)
                db.executemany(
                    "INSERT OR REPLACE INTO folders (folder, used_s, signature, stats, digests) VALUES (?, ?, ?, ?, ?)",
                    [
                        (f, now_s, r.signature, _encode((r.names, r.keys)), _encode(r.digests))
                        for f, r in merged.items()
                    ],
                )
                if not self._pruned:
                    db.execute("DELETE FROM folders WHERE used_s < ?", (now_s - UNUSED_ROW_TTL_S,))
                    db.execute("DELETE FROM trees WHERE used_s < ?", (now_s - UNUSED_ROW_TTL_S,))
            self._pruned = True
            return {f: r.signature for f, r in rows.items() if r.signature is not None}

        return self._db.run(write, {})

    def _merge(self, db: sqlite3.Connection, rows: dict[str, _Row]) -> dict[str, _Row]:
        """Add ``rows`` to what the folders hold; a merged row has no signature (its listing is not known)."""
        merged: dict[str, _Row] = {}
        if not rows:
            return merged
        held: dict[str, tuple[list[str], list[StatKey], list[str]]] = {}
        for folder, _, _, stats, digests in _select(db, list(rows)):
            decoded, decoded_digests = self._decode(folder, stats), self._decode(folder, digests)
            if isinstance(decoded, tuple) and isinstance(decoded_digests, list):
                held[folder] = (*decoded, decoded_digests)
        for folder, row in rows.items():
            old_names, old_keys, old_digests = held.get(folder, ([], [], []))
            entries = dict(zip(old_names, zip(old_keys, old_digests, strict=True), strict=True))
            entries.update(zip(row.names, zip(row.keys, row.digests, strict=True), strict=True))
            values = list(entries.values())
            merged[folder] = _Row(None, list(entries), [k for k, _ in values], [d for _, d in values], False)
        return merged

    def _decode(self, folder: str, blob: bytes) -> Any:
        # marshal is not meant for damaged input: the checksum is checked before the bytes are trusted to it
        body = blob[_CHECKSUM_BYTES:]
        if blob[:_CHECKSUM_BYTES] == xxhash.xxh3_64_digest(body):
            try:
                return marshal.loads(body)
            except (EOFError, ValueError, TypeError):
                pass
        self._db.warn_once("corrupt-row", f"stat cache {str(self.path)!r}: ignoring a damaged entry for {folder!r}")
        return None

    def folders_under(self, root: str) -> frozenset[str]:
        """The folders at or below ``root`` that the cache holds anything for (one query, nothing decoded)."""

        def read(db: sqlite3.Connection) -> frozenset[str]:
            base = root.rstrip("/")
            query = "SELECT folder FROM folders WHERE folder = ? OR (folder > ? AND folder < ?)"
            return frozenset(row[0] for row in db.execute(query, (base, base + "/", base + "0")))  # "0" follows "/"

        return self._db.run(read, frozenset())

    # -- trees ----------------------------------------------------------------------------------------------------
    def tree_digest(self, root: str, config: str, tree_signature: bytes) -> str | None:
        """The digest kept for the tree at ``root`` scanned with ``config``, if its signature is the same."""

        def read(db: sqlite3.Connection) -> str | None:
            query = "SELECT signature, digest, used_s FROM trees WHERE root = ? AND config = ?"
            found = db.execute(query, (root, config)).fetchone()
            if found is None or found[0] != tree_signature:
                return None
            now_s = self.clock() // 1_000_000_000
            if now_s - found[2] > _TOUCH_AFTER_S:
                _touch(db, "UPDATE trees SET used_s = ? WHERE root = ? AND config = ?", [(now_s, root, config)])
            return str(found[1])

        return self._db.run(read, None)

    def remember_tree(self, root: str, config: str, tree_signature: bytes, digest: str) -> None:
        now_s = self.clock() // 1_000_000_000

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO trees (root, config, signature, digest, used_s) VALUES (?, ?, ?, ?, ?)",
                (root, config, tree_signature, digest, now_s),
            )

        self._db.run(write, None)


def _select(db: sqlite3.Connection, folders: list[str]) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(folders), _MAX_SQL_PARAMS):
        part = folders[start : start + _MAX_SQL_PARAMS]
        marks = ",".join("?" * len(part))
        query = f"SELECT folder, used_s, signature, stats, digests FROM folders WHERE folder IN ({marks})"
        found.extend(db.execute(query, part))
    return found


def _touch(db: sqlite3.Connection, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """Mark rows as used, unless another process is writing: a lookup never waits for that."""
    db.execute("PRAGMA busy_timeout = 0")
    with contextlib.suppress(sqlite3.OperationalError):  # busy: marked next time
        db.executemany(statement, rows)


def _encode(value: Any) -> bytes:
    body = marshal.dumps(value, _MARSHAL_VERSION)
    return xxhash.xxh3_64_digest(body) + body


_default: dict[Path, StatCache] = {}
_default_lock = threading.Lock()


def default_stat_cache() -> StatCache:
    """The process-wide cache at ``$MLPIPE_HOME/cache/stat-cache.sqlite3`` (re-read when ``MLPIPE_HOME`` changes)."""
    path = default_cache_path()
    with _default_lock:
        cache = _default.get(path)
        if cache is None:
            cache = _default[path] = StatCache(path)
        return cache


def resolve_cache(cache: StatCache | bool) -> StatCache | None:
    """``True``: the default cache; ``False``: none; or the cache given."""
    if cache is True:
        return default_stat_cache()
    if cache is False:
        return None
    return cache
