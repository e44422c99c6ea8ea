"""Per-step history of reuse decisions: what each step run was keyed on and what was decided.

Layout: ``_mlpipe/reuse/history/<dag_id>/<task_id>/<day>/<inverted time>_<step_run_id>.json``, newest first (see
``storage.paged``), and ``_mlpipe/runs/<step_run_id>/decision.json``, the same entry under its step run. The
nearest earlier run, which the explainer compares the next run against, is on the first page of the step's
folder, so a decision reads one page however long the history is. Histories written before this layout
(``_mlpipe/reuse/steps/<dag_id>/<task_id>/<decided at>_<step_run_id>.json``, oldest first) are still read, when
the step has no entry of the new layout to answer with.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.core.model import Record
from airflow_mlpipe.reuse.index import INDEX_ROOT
from airflow_mlpipe.storage.datastore import Datastore, OnDefaultDatastore
from airflow_mlpipe.storage.paged import list_page, newest_first_name, unique_of

log = logging.getLogger(__name__)

HISTORY_ROOT = f"{INDEX_ROOT}/history"
LEGACY_ROOT = f"{INDEX_ROOT}/steps"  # oldest first, before the newest-first layout
PAGE = 50
HISTORY_FORMAT = 1


@dataclass(frozen=True)
class HistoryEntry(Record):
    """:param decision: ``ReuseDecision.to_dict()``."""

    FORMAT = HISTORY_FORMAT
    LABEL = "reuse history entry"

    step_run_id: str
    dag_id: str
    run_id: str
    task_id: str
    decided_at: str
    key: str
    components: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    decision: Mapping[str, Any] = field(default_factory=dict)


def history_name(task_id: str, map_index: int) -> str:
    """The history a step's decisions go to: its task id, or for a map index of a step that keeps one history per
    map index (a ``ParallelRunStep``'s mini-batch) ``<task_id>.m<map_index>``, so that a miss is explained against
    the same mini-batch's previous run."""
    return f"{task_id}.m{map_index}" if map_index >= 0 else task_id


class StepHistory(OnDefaultDatastore):
    """The decisions of one step (``dag_id``/``task_id``)."""

    def __init__(self, dag_id: str, task_id: str, store: Datastore | None = None) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        self._store = store

    @property
    def folder(self) -> str:
        return f"{HISTORY_ROOT}/{self.dag_id}/{self.task_id}"

    def add(self, entry: HistoryEntry) -> str:
        """Keep ``entry``; returns its path. A retried task instance adds a second entry for its step run."""
        path = f"{self.folder}/{newest_first_name(entry.decided_at, entry.step_run_id)}"
        body = json.dumps(entry.to_dict(), sort_keys=True).encode("utf-8")
        self.store.write_many({path: body, decision_path(entry.step_run_id): body})  # (often too large to list inline)
        return path

    def newest(self, *, limit: int | None = None) -> Iterator[HistoryEntry]:
        """Entries newest first, a page at a time (unreadable ones skipped), then the older layout's."""
        seen = 0
        for _path, entry in self._pages():
            yield entry
            seen += 1
            if limit is not None and seen >= limit:
                return
        if seen == 0:
            yield from self._legacy().newest()

    def previous(self, step_run_id: str) -> HistoryEntry | None:
        """The nearest earlier run of this step other than ``step_run_id`` (its retries included)."""
        own = self._find(step_run_id)  # (a step run of the older layout never asks: it decided long ago)
        own_name = newest_first_name(own.decided_at, step_run_id) if own is not None else None
        for path, entry in self._pages():
            name = path[len(self.folder) + 1 :]
            if unique_of(name) == step_run_id or (own_name is not None and name <= own_name):
                continue
            return entry
        return self._legacy().previous(step_run_id)

    def find(self, step_run_id: str) -> HistoryEntry | None:
        """The newest entry of ``step_run_id`` (its last try): one read."""
        return self._find(step_run_id) or self._legacy().find(step_run_id)

    def _find(self, step_run_id: str) -> HistoryEntry | None:
        entry = self._read(decision_path(step_run_id))
        if entry is not None and entry.dag_id == self.dag_id and entry.task_id == self.task_id:
            return entry
        return None

    def find_run(self, run_id: str) -> HistoryEntry | None:
        """The newest entry of any attempt of this step in the DAG run ``run_id`` (its last try); reads back from
        the newest only as far as that run."""
        for _path, entry in self._pages():
            if entry.run_id == run_id:
                return entry
        return self._legacy().find_run(run_id)

    def latest(self) -> HistoryEntry | None:
        return next(self.newest(limit=1), None)

    def _pages(self) -> Iterator[tuple[str, HistoryEntry]]:
        """Entries newest first: a listing page of names, their bodies read in growing batches (what a decision
        wants is nearly always the first or second entry)."""
        token: str | None = None
        while True:
            page = list_page(self.store, self.folder, limit=PAGE, token=token)
            start, size = 0, 2
            while start < len(page.paths):
                batch = page.paths[start : start + size]
                bodies = {**page.inline, **self.store.read_many([p for p in batch if p not in page.inline])}
                for path in batch:
                    entry = _parse(path, bodies.get(path))
                    if entry is not None:
                        yield path, entry
                start, size = start + size, size * 4
            if page.next_token is None:
                return
            token = page.next_token

    def _read(self, path: str) -> HistoryEntry | None:
        return _parse(path, self.store.read_many([path]).get(path))

    def _legacy(self) -> _LegacyHistory:
        return _LegacyHistory(self.dag_id, self.task_id, self.store)


def decision_path(step_run_id: str) -> str:
    from airflow_mlpipe.steps.records import run_folder

    return f"{run_folder(step_run_id)}/decision.json"


def _parse(path: str, body: bytes | Exception | None) -> HistoryEntry | None:
    if body is None or isinstance(body, FileNotFoundError):
        return None
    try:
        if isinstance(body, Exception):
            raise body
        return HistoryEntry.from_dict(json.loads(body))
    except (ValueError, KeyError, TypeError, OSError) as exc:
        log.warning("ignoring the unreadable reuse history entry %s (%s)", path, exc)
        return None


class _LegacyHistory:
    """A history of the older layout: one folder per step, oldest first, read whole (it no longer grows)."""

    def __init__(self, dag_id: str, task_id: str, store: Datastore) -> None:
        self.folder = f"{LEGACY_ROOT}/{dag_id}/{task_id}"
        self.store = store

    def names(self) -> list[str]:
        try:
            return sorted(p.rsplit("/", 1)[-1] for p in self.store.list(self.folder) if p.endswith(".json"))
        except FileNotFoundError:
            return []

    def newest(self) -> Iterator[HistoryEntry]:
        for name in reversed(self.names()):
            entry = self._read(name)
            if entry is not None:
                yield entry

    def previous(self, step_run_id: str) -> HistoryEntry | None:
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
        for name in reversed(self.names()):
            if _run_of(name) == step_run_id:
                return self._read(name)
        return None

    def find_run(self, run_id: str) -> HistoryEntry | None:
        return next((e for e in self.newest() if e.run_id == run_id), None)

    def _read(self, name: str) -> HistoryEntry | None:
        path = f"{self.folder}/{name}"
        return _parse(path, self.store.read_many([path]).get(path))


def _run_of(name: str) -> str:
    return name.removesuffix(".json").split("_", 1)[1] if "_" in name else ""
