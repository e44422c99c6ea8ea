"""A local cache of content digests keyed by a file's exact stat, so an unchanged file is not read again.

A cached digest is used only when the file's path, size, ``mtime_ns``, inode and ``ctime_ns`` all equal what they
were when it was hashed; a touched file (new mtime) is re-read and, if its bytes are the same, gets the same digest.
``ctime`` cannot be set by users (``os.utime`` changes it too), so new bytes written at the same size with the old
mtime restored are still noticed.

The "racy" case (as git calls it): a file rewritten within the timestamp granularity of the moment it was hashed
keeps its stat while its bytes change. Entries whose ``mtime`` or ``ctime`` lies within ``racy_window_ns`` of the
start of hashing are therefore never cached; such a file is simply read again next time.

Storage: one SQLite file (default ``$MLPIPE_HOME/cache/stat-cache.sqlite3``) with a row per folder, holding a
checksummed ``marshal`` blob of ``({name: (size, mtime_ns, inode, ctime_ns)}, {name: digest})``: loading the 100
folders of a 100,000-file tree is one query and ~25 ms, and an unchanged folder is recognised by one dict
comparison. SQLite's locking makes concurrent processes safe; a
corrupt or unreadable cache is reported with a warning and rebuilt (or bypassed), never raised: it is only a cache,
and may be deleted at any time.
"""

from __future__ import annotations

import logging
import marshal
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import xxhash

log = logging.getLogger(__name__)

# (size, mtime_ns, inode, ctime_ns): a plain tuple so a whole folder compares in C.
StatKey = tuple[int, int, int, int]
# What one folder's row holds: the stat key and the digest of each file, by name.
_Folder = tuple[dict[str, StatKey], dict[str, str]]


class FolderStats(NamedTuple):
    """Files of one folder to look up: names and their stat keys, in parallel lists."""

    names: Sequence[str]
    keys: Sequence[StatKey]


class FolderDigests(NamedTuple):
    """Files of one folder to remember: names, the stat keys taken before reading, and digests."""

    names: Sequence[str]
    keys: Sequence[StatKey]
    digests: Sequence[str]


_T = TypeVar("_T")

FORMAT = "mlpipe-stat-cache/1"
RACY_WINDOW_NS = 2_000_000_000  # coarser than any common filesystem's timestamps (FAT: 2 s)
UNUSED_ROW_TTL_S = 30 * 24 * 3600  # folders not looked at for this long are dropped
_TOUCH_AFTER_S = 24 * 3600  # mark a row as used at most once a day: keeps the warm path read-only
_BUSY_TIMEOUT_S = 5.0
_MAX_SQL_PARAMS = 500
_CHECKSUM_BYTES = 8
_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_EMPTY: _Folder = ({}, {})


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


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
        self._disabled = False
        self._warned: set[str] = set()
        self._pruned = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StatCache({str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        # sent to worker processes: settings only; each process keeps its own lock, counters and warnings
        return {"path": self.path, "racy_window_ns": self.racy_window_ns, "clock": self.clock}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], racy_window_ns=state["racy_window_ns"], clock=state["clock"])  # type: ignore[misc]

    # -- reading --------------------------------------------------------------------------------------------------
    def lookup(self, folders: Mapping[str, FolderStats]) -> dict[str, list[str | None]]:
        """For each absolute folder, the cached digest of each file named, or None where the stat differs."""
        cached = self._load(list(folders))
        out: dict[str, list[str | None]] = {}
        hits = misses = 0
        for folder, (names, keys) in folders.items():
            known_keys, known_digests = cached.get(folder, _EMPTY)
            found: list[str | None]
            if known_keys == dict(zip(names, keys, strict=True)):  # the folder as it was: compared in C
                found = list(map(known_digests.__getitem__, names))
            else:
                get_key, get_digest = known_keys.get, known_digests.get
                found = [get_digest(n) if get_key(n) == k else None for n, k in zip(names, keys, strict=True)]
            missed = found.count(None)
            hits, misses = hits + len(found) - missed, misses + missed
            out[folder] = found
        with self._lock:
            self.hits += hits
            self.misses += misses
        return out

    def _load(self, folders: list[str]) -> dict[str, _Folder]:
        if not folders:
            return {}
        now_s = self.clock() // 1_000_000_000

        def load(db: sqlite3.Connection) -> dict[str, _Folder]:
            found: dict[str, _Folder] = {}
            stale: list[tuple[int, str]] = []
            for folder, used_s, blob in _select(db, "folder, used_s, blob", folders):
                decoded = self._decode(folder, blob)
                if decoded is not None:
                    found[folder] = decoded
                    if now_s - used_s > _TOUCH_AFTER_S:
                        stale.append((now_s, folder))
            if stale:
                _touch(db, stale)
            return found

        return self._run(load, {})

    def _decode(self, folder: str, blob: bytes) -> _Folder | None:
        # marshal is not meant for damaged input: check the checksum before trusting the bytes to it
        body = blob[_CHECKSUM_BYTES:]
        if blob[:_CHECKSUM_BYTES] == xxhash.xxh3_64_digest(body):
            try:
                keys, digests = marshal.loads(body)
                if isinstance(keys, dict) and isinstance(digests, dict):
                    return keys, digests
            except (EOFError, ValueError, TypeError):
                pass
        self._warn("corrupt-row", f"stat cache {str(self.path)!r}: ignoring a damaged entry for {folder!r}")
        return None

    # -- writing --------------------------------------------------------------------------------------------------
    def record(self, folders: Mapping[str, FolderDigests], *, started_ns: int, complete: bool = False) -> int:
        """Remember the digests of files stat'ed and hashed from ``started_ns`` on; returns how many were kept.

        ``complete`` says each folder's lists hold every file in it, so names not listed are forgotten. Entries
        in the racy window are left out (see the module docstring).
        """
        newest_ok = started_ns - self.racy_window_ns
        updates: dict[str, _Folder] = {}
        for folder, (names, keys, digests) in folders.items():
            keep = [i for i, k in enumerate(keys) if k[1] < newest_ok and k[3] < newest_ok]
            if keep or complete:
                updates[folder] = ({names[i]: keys[i] for i in keep}, {names[i]: digests[i] for i in keep})
        if not updates:
            return 0
        now_s = self.clock() // 1_000_000_000

        def write(db: sqlite3.Connection) -> int:
            with db:
                db.execute("BEGIN IMMEDIATE")  # read, merge and write under the write lock: no update is lost
                merged = updates if complete else self._merge(db, updates)
                db.executemany(
                    "INSERT OR REPLACE INTO folders (folder, used_s, blob) VALUES (?, ?, ?)",
                    [(f, now_s, _encode(entry)) for f, entry in merged.items()],
                )
                if not self._pruned:
                    db.execute("DELETE FROM folders WHERE used_s < ?", (now_s - UNUSED_ROW_TTL_S,))
            self._pruned = True
            return sum(len(keys) for keys, _ in updates.values())

        return self._run(write, 0)

    def _merge(self, db: sqlite3.Connection, updates: dict[str, _Folder]) -> dict[str, _Folder]:
        merged = {
            folder: self._decode(folder, blob) or ({}, {})
            for folder, blob in _select(db, "folder, blob", list(updates))
        }
        for folder, (keys, digests) in updates.items():
            old_keys, old_digests = merged.setdefault(folder, ({}, {}))
            old_keys.update(keys)
            old_digests.update(digests)
        return merged

    def clear(self) -> None:
        """Forget every entry (the file is removed and made again on next use)."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    # -- connection and failure handling ----------------------------------------------------------------------------
    def _run(self, op: Callable[[sqlite3.Connection], _T], fallback: _T) -> _T:
        """``op`` on a fresh connection; ``fallback`` when the cache cannot be used now. A damaged file is rebuilt."""
        for attempt in (1, 2):
            if self._disabled:
                return fallback
            try:
                db = self._open()
            except OSError as exc:
                self._give_up(f"cannot be created ({exc})")
                return fallback
            except sqlite3.Error as exc:
                if not self._recover(exc, attempt):
                    return fallback
                continue
            try:
                return op(db)
            except sqlite3.Error as exc:
                if not self._recover(exc, attempt):
                    return fallback
            finally:
                db.close()
        return fallback

    def _recover(self, exc: sqlite3.Error, attempt: int) -> bool:
        """True when the operation should be tried again (the damaged file was removed)."""
        name = getattr(exc, "sqlite_errorname", "")
        if name in _CORRUPT and attempt == 1:
            self._warn("corrupt", f"stat cache {str(self.path)!r} is damaged ({exc}); rebuilding it")
            self.clear()
            return True
        if name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            log.debug("stat cache %s is busy; going on without it this time", self.path)
        else:
            self._give_up(f"cannot be used ({exc})")
        return False

    def _give_up(self, why: str) -> None:
        self._warn("off", f"stat cache {str(self.path)!r} {why}; files are read again instead")
        self._disabled = True

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            # No fsync: this is a cache, opened and closed per call. A killed process cannot damage it (the rollback
            # journal is on disk); a power cut might, which is detected (checksums, SQLite's own checks) and rebuilt.
            # WAL would sync on every close, as the last connection checkpoints: 15-20 ms a call.
            db.execute("PRAGMA journal_mode=TRUNCATE")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS folders (folder TEXT PRIMARY KEY, used_s INTEGER NOT NULL, "
                "blob BLOB NOT NULL) WITHOUT ROWID"
            )
            found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if found is None or found[0] != _format_tag():
                with db:
                    db.execute("BEGIN IMMEDIATE")
                    db.execute("DELETE FROM folders")  # written by another format: start afresh
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (_format_tag(),))
        except BaseException:
            db.close()
            raise
        return db

    def _warn(self, what: str, message: str) -> None:
        with self._lock:
            if what in self._warned:
                return
            self._warned.add(what)
        log.warning(message)


def _format_tag() -> str:
    return f"{FORMAT}/marshal-{marshal.version}"


def _select(db: sqlite3.Connection, columns: str, folders: list[str]) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(folders), _MAX_SQL_PARAMS):
        part = folders[start : start + _MAX_SQL_PARAMS]
        marks = ",".join("?" * len(part))
        found.extend(db.execute(f"SELECT {columns} FROM folders WHERE folder IN ({marks})", part))
    return found


def _touch(db: sqlite3.Connection, stale: list[tuple[int, str]]) -> None:
    """Mark rows as used, unless another process is writing: a lookup never waits for that."""
    db.execute("PRAGMA busy_timeout = 0")
    try:
        db.executemany("UPDATE folders SET used_s = ? WHERE folder = ?", stale)
    except sqlite3.OperationalError:
        log.debug("stat cache busy: rows not marked as used this time")


def _encode(folder: _Folder) -> bytes:
    body = marshal.dumps(folder)
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
