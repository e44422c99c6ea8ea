"""Per-step history of reuse decisions: what each step run was keyed on and what was decided.

Layout: ``_mlpipe/reuse/steps/<dag_id>/<task_id>/<decided at>_<step_run_id>.json``. The time comes first in the
name, so one listing of the step's folder finds the nearest earlier run without reading every entry; the entry
holds the key's components and details, which is what the explainer compares the next run against.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.reuse.index import INDEX_ROOT
from airflow_mlpipe.storage.datastore import Datastore, OnDefaultDatastore

log = logging.getLogger(__name__)

STEPS_ROOT = f"{INDEX_ROOT}/steps"
HISTORY_FORMAT = 1


@dataclass(frozen=True)
class HistoryEntry:
    """:param decision: ``ReuseDecision.to_dict()``."""

    step_run_id: str
    dag_id: str
    run_id: str
    task_id: str
    decided_at: str
    key: str
    components: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    decision: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": HISTORY_FORMAT,
            "step_run_id": self.step_run_id,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "decided_at": self.decided_at,
            "key": self.key,
            "components": dict(self.components),
            "details": dict(self.details),
            "decision": dict(self.decision),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEntry:
        if data.get("format") != HISTORY_FORMAT:
            raise ValueError(f"reuse history entry format {data.get('format')!r} is not {HISTORY_FORMAT}")
        return cls(
            step_run_id=str(data["step_run_id"]),
            dag_id=str(data["dag_id"]),
            run_id=str(data["run_id"]),
            task_id=str(data["task_id"]),
            decided_at=str(data["decided_at"]),
            key=str(data["key"]),
            components=dict(data.get("components") or {}),
            details=dict(data.get("details") or {}),
            decision=dict(data.get("decision") or {}),
        )


class StepHistory(OnDefaultDatastore):
    """The decisions of one step (``dag_id``/``task_id``), newest last."""

    def __init__(self, dag_id: str, task_id: str, store: Datastore | None = None) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        self._store = store

    @property
    def folder(self) -> str:
        return f"{STEPS_ROOT}/{self.dag_id}/{self.task_id}"

    def add(self, entry: HistoryEntry) -> str:
        """Keep ``entry``; returns its path. A retried task instance adds a second entry for its step run."""
        path = f"{self.folder}/{_stamp(entry.decided_at)}_{entry.step_run_id}.json"
        self.store.write_json(path, entry.to_dict())
        return path

    def names(self) -> list[str]:
        """Entry file names, oldest first."""
        if not self.store.exists(self.folder):
            return []
        return sorted(p.rsplit("/", 1)[-1] for p in self.store.list(self.folder) if p.endswith(".json"))

    def previous(self, step_run_id: str) -> HistoryEntry | None:
        """The nearest earlier run of this step other than ``step_run_id`` (its retries included)."""
        names = self.names()
        own = [n for n in names if _run_of(n) == step_run_id]
        before = own[0] if own else None
        for name in reversed(names):
            if _run_of(name) == step_run_id or (before is not None and name > before):
                continue
            entry = self._read(name)
            if entry is not None:
                return entry
        return None

    def find(self, step_run_id: str) -> HistoryEntry | None:
        """The newest entry of ``step_run_id`` (its last try)."""
        for name in reversed(self.names()):
            if _run_of(name) == step_run_id:
                return self._read(name)
        return None

    def find_run(self, run_id: str) -> HistoryEntry | None:
        """The newest entry of any attempt of this step in the DAG run ``run_id`` (its last try)."""
        from airflow_mlpipe.core.attempt import readable_prefix

        prefix = readable_prefix(self.dag_id, run_id, self.task_id)
        for name in reversed(self.names()):
            if _run_of(name).startswith(prefix):
                entry = self._read(name)
                if entry is not None and entry.run_id == run_id:
                    return entry
        return None

    def latest(self) -> HistoryEntry | None:
        for name in reversed(self.names()):
            entry = self._read(name)
            if entry is not None:
                return entry
        return None

    def _read(self, name: str) -> HistoryEntry | None:
        path = f"{self.folder}/{name}"
        try:
            return HistoryEntry.from_dict(self.store.read_json(path))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the unreadable reuse history entry %s (%s)", path, exc)
            return None


def _stamp(iso: str) -> str:
    """``2026-11-25T09:14:01.123+00:00`` → ``20261125T091401123Z``: sorts as the times do."""
    moment = dt.datetime.fromisoformat(iso).astimezone(dt.UTC)
    return moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"


def _run_of(name: str) -> str:
    return name.removesuffix(".json").split("_", 1)[1] if "_" in name else ""
