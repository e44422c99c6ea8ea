"""Thread-safe progress counting for a transfer, with a callback called at most once an interval.

Copiers report from worker threads and from the event loop thread at once, so the counters sit behind a lock;
the callback itself runs outside the lock (a slow logger must not stall the other workers' counting).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from airflow_mlpipe.storage.transfer_types import TransferProgress

log = logging.getLogger("airflow_mlpipe.storage.transfer")

ProgressCallback = Callable[[TransferProgress], object]


class ProgressTracker:
    def __init__(
        self,
        *,
        files_total: int,
        bytes_total: int,
        files_skipped: int,
        callback: ProgressCallback | None,
        interval: float,
    ) -> None:
        self.files_total = files_total
        self.bytes_total = bytes_total
        self.files_skipped = files_skipped
        self.files_done = 0
        self.bytes_done = 0
        self.retries = 0
        self._callback = callback
        self._interval = interval
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last_emit = float("-inf")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def _snapshot(self, phase: str) -> TransferProgress:
        return TransferProgress(
            phase="done" if phase == "done" else "copying",
            files_done=self.files_done,
            files_total=self.files_total,
            bytes_done=self.bytes_done,
            bytes_total=self.bytes_total,
            files_skipped=self.files_skipped,
            elapsed_s=self.elapsed,
            retries=self.retries,
        )

    def advance(self, *, files: int = 0, nbytes: int = 0) -> None:
        """Count finished files and copied bytes (negative bytes take back a failed attempt's part)."""
        snapshot = None
        with self._lock:
            self.files_done += files
            self.bytes_done += nbytes
            now = time.monotonic()
            if self._callback is not None and now - self._last_emit >= self._interval:
                self._last_emit = now
                snapshot = self._snapshot("copying")
        if snapshot is not None and self._callback is not None:
            self._callback(snapshot)

    def retried(self, exc: BaseException) -> None:
        with self._lock:
            self.retries += 1
        first_line = next(iter(str(exc).splitlines()), "")
        log.warning("transient storage error, trying again: %s: %s", type(exc).__name__, first_line)

    def start(self) -> None:
        self.advance()

    def finish(self) -> TransferProgress:
        with self._lock:
            snapshot = self._snapshot("done")
        if self._callback is not None:
            self._callback(snapshot)
        return snapshot
