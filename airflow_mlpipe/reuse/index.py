"""The reuse index: ``_mlpipe/reuse/<key>.json`` maps a reuse key to the step run that produced outputs for it.

An entry is written only after every output of that run is complete (and registered, when asked). It is sealed
as registry records are (``datasets.seal``, under ``MLPIPE_REGISTRY_KEY`` where set, which step scripts never see),
and read only when its seal holds and its key is the one its file is named after: an entry a step script wrote or
changed, or one copied under another key, is ignored with a warning (a miss, so the step computes), as is a corrupt
one; the next run that produces the key overwrites it. It never fails a run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.core.model import Record
from airflow_mlpipe.datasets.seal import SEAL_FIELD, seal_problem, sealed_bytes
from airflow_mlpipe.datasets.seal_dates import SealedSince
from airflow_mlpipe.storage.datastore import Datastore, OnDefaultDatastore

log = logging.getLogger(__name__)

INDEX_ROOT = "_mlpipe/reuse"
ENTRY_FORMAT = 1
ENTRY_SALT = b"airflow-mlpipe reuse index entry\n"
# When a datastore's index began to be sealed: entries without a seal written before are older code's.
SEALED_MARKER = "_mlpipe/seals/reuse-index.json"


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
            if not isinstance(data, Mapping):
                raise ValueError(f"it holds {type(data).__name__}, not an entry")
            problem = seal_problem(data, ENTRY_SALT)
            legacy = (
                problem is not None and SEAL_FIELD not in data and self._sealed_since().written_before(self.path(key))
            )
            if problem is not None and not legacy:
                raise ValueError(problem)
            entry = ReuseEntry.from_dict({k: v for k, v in data.items() if k != SEAL_FIELD})
            if entry.key != key:
                raise ValueError(f"it is the entry of key {entry.key}, copied under another name")
            if legacy:  # trusted as before; sealed now, so that it is read as any entry from here on
                self.put(entry)
            return entry
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the reuse index entry %s (%s); the next run will overwrite it", key, exc)
            return None

    def put(self, entry: ReuseEntry) -> None:
        """Write (or overwrite) the entry, sealed: the newest complete run for a key wins."""
        self._sealed_since().mark()
        self.store.write_bytes(self.path(entry.key), sealed_bytes(entry.to_dict(), ENTRY_SALT))

    def _sealed_since(self) -> SealedSince:
        """When this datastore's index began to be sealed (``datasets.seal_dates``): an entry without a seal that
        the store dates before is older code's, read as before and sealed in place; one dated after is refused."""
        return SealedSince(self.store, SEALED_MARKER, "reuse index entries")

    def drop(self, key: str) -> None:
        self.store.delete(self.path(key), missing_ok=True)
