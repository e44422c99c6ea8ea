"""When a datastore's records of one kind began to be sealed, so that records older code wrote without a seal are
still read after an upgrade, and one written without a seal since is refused.

The first sealed write of a kind creates a marker (create-if-absent); the store's own clock dates it. A record
without a seal is older code's when the store dates it before the marker (both times by the store's clock; object
stores keep whole seconds, so one written in the marker's second is refused too). Nothing is rewritten: an upgrade
costs one ``info`` request per unsealed record read, and one per marker a process.
"""

from __future__ import annotations

import datetime as dt

from airflow_mlpipe.storage.datastore import Datastore

_SINCE: dict[tuple[str, str], dt.datetime] = {}  # (datastore URL, marker) -> the marker's time, once read


class SealedSince:
    """The marker ``marker`` of one kind of record in ``store``; ``note`` is what the marker says it marks."""

    def __init__(self, store: Datastore, marker: str, note: str) -> None:
        self.store, self.marker, self.note = store, marker, note

    def mark(self) -> None:
        """Before the first sealed write of a process: records of this kind are sealed from now on."""
        self._since(create=True)

    def written_before(self, path: str, written: dt.datetime | None = None) -> bool:
        """True when the record at ``path`` (one without a seal) is older code's: the store dates it before the
        marker, or nothing of this kind was ever sealed here. ``written``: its time from a listing, when the
        caller has it (saves a request)."""
        since = self._since(create=False)
        if since is None:
            return True
        if written is None:
            from airflow_mlpipe.gc.model import modified_at

            written = modified_at(self.store.info(path))
        return written is not None and written < since

    def _since(self, *, create: bool) -> dt.datetime | None:
        cached = (self.store.url, self.marker)
        if cached not in _SINCE:
            since = self._marker_time()
            if since is None and create:
                self.store.create_if_absent(self.marker, f'{{"sealed": "{self.note}"}}'.encode())
                since = self._marker_time()
            if since is None:
                return None
            _SINCE[cached] = since
        return _SINCE[cached]

    def _marker_time(self) -> dt.datetime | None:
        from airflow_mlpipe.gc.model import modified_at

        try:
            return modified_at(self.store.info(self.marker))
        except FileNotFoundError:
            return None
