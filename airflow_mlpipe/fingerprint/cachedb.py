"""The SQLite file behind the stat cache: schema, connections, and what happens when it is damaged or unusable.

Every operation opens its own short-lived connection (so worker processes and threads never share one) and is
retried once on a rebuilt file when SQLite finds the file damaged. A busy database (another process writing) makes
that operation a miss; a file that cannot be created or written turns the cache off for this process, with one
warning. Nothing here ever raises to the caller: the cache is an optimisation, never a reason to fail.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

_T = TypeVar("_T")

FORMAT = "mlpipe-stat-cache/2"  # a file of another format is emptied, not read
_BUSY_TIMEOUT_S = 5.0
_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS folders (folder TEXT PRIMARY KEY, used_s INTEGER NOT NULL, signature BLOB, "
    "stats BLOB NOT NULL, digests BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS trees (root TEXT NOT NULL, config TEXT NOT NULL, signature BLOB NOT NULL, "
    "digest TEXT NOT NULL, used_s INTEGER NOT NULL, PRIMARY KEY (root, config)) WITHOUT ROWID",
)


class CacheDB:
    """One SQLite file; ``run`` an operation on it or get the fallback."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.disabled = False
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def run(self, op: Callable[[sqlite3.Connection], _T], fallback: _T) -> _T:
        """``op`` on a fresh connection; ``fallback`` when the cache cannot be used now."""
        for attempt in (1, 2):
            if self.disabled:
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

    def clear(self) -> None:
        """Remove the file (it is made again on next use)."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    def warn_once(self, what: str, message: str) -> None:
        with self._lock:
            if what in self._warned:
                return
            self._warned.add(what)
        log.warning(message)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            # No fsync: a cache, opened and closed per call. A killed process cannot damage it (the rollback journal
            # is on disk); a power cut might, which is detected (checksums, SQLite's own checks) and rebuilt. WAL
            # would sync on every close, as the last connection checkpoints: 15-20 ms a call.
            db.execute("PRAGMA journal_mode=TRUNCATE")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if found is None or found[0] != FORMAT:
                with db:
                    db.execute("BEGIN IMMEDIATE")
                    # Read again under the write lock: another process may have made the file (and written rows
                    # into it) between the read above and this lock; dropping its tables then would lose them.
                    found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
                    if found is None or found[0] != FORMAT:
                        db.execute("DROP TABLE IF EXISTS folders")  # another format: start afresh
                        db.execute("DROP TABLE IF EXISTS trees")
                        for statement in _SCHEMA:
                            db.execute(statement)
                        db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (FORMAT,))
        except BaseException:
            db.close()
            raise
        return db

    def _recover(self, exc: sqlite3.Error, attempt: int) -> bool:
        """True when the operation should be tried again (the damaged file was removed)."""
        name = getattr(exc, "sqlite_errorname", "")
        if name in _CORRUPT and attempt == 1:
            self.warn_once("corrupt", f"stat cache {str(self.path)!r} is damaged ({exc}); rebuilding it")
            self.clear()
            return True
        if name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            log.debug("stat cache %s is busy; going on without it this time", self.path)
        else:
            self._give_up(f"cannot be used ({exc})")
        return False

    def _give_up(self, why: str) -> None:
        self.warn_once("off", f"stat cache {str(self.path)!r} {why}; files are read again instead")
        self.disabled = True
