"""The reuse index: ``_mlpipe/reuse/<key>.json`` maps a reuse key to the step run that produced outputs for it.

An entry is written only after every output of that run is complete (and registered, when asked). A corrupt
entry is ignored with a warning and overwritten by the next run that produces the key; it never fails a run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.core.model import Record
from airflow_mlpipe.storage.datastore import Datastore, OnDefaultDatastore

log = logging.getLogger(__name__)

INDEX_ROOT = "_mlpipe/reuse"
ENTRY_FORMAT = 1


@dataclass(frozen=True)
class ReuseEntry(Record):
    """:param outputs: per output ``{"name", "datastore", "path", "uri", "manifest": {"files", "bytes",
    "digest"}, "registered": {...} | None}`` as the run record has them."""

    FORMAT = ENTRY_FORMAT
    LABEL = "reuse entry"

    key: str
    step_run_id: str
    dag_id: str
    task_id: str
    created_at: str
    outputs: tuple[Mapping[str, Any], ...] = ()
    components: Mapping[str, Any] = field(default_factory=dict)


class ReuseIndex(OnDefaultDatastore):
    def __init__(self, store: Datastore | None = None) -> None:
        self._store = store

    @staticmethod
    def path(key: str) -> str:
        return f"{INDEX_ROOT}/{key}.json"

    def get(self, key: str) -> ReuseEntry | None:
        """The entry for ``key``; None when there is none or it is unreadable (then a warning is logged)."""
        try:
            data = self.store.read_json(self.path(key))
            return ReuseEntry.from_dict(data)
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the corrupt reuse index entry %s (%s); the next run will overwrite it", key, exc)
            return None

    def put(self, entry: ReuseEntry) -> None:
        """Write (or overwrite) the entry: the newest complete run for a key wins."""
        self.store.write_json(self.path(entry.key), entry.to_dict())

    def drop(self, key: str) -> None:
        self.store.delete(self.path(key), missing_ok=True)
