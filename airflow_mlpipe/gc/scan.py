"""What garbage collection reads: each prefix of the record layout listed once, and the small records it needs
to decide (step run records, reuse index entries, the latest generation of each lease, dataset version records),
read in batches. Output files are never read; their sizes come from the records.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.datasets.registry import LATEST_POINTER, REGISTRY_ROOT
from airflow_mlpipe.gc.model import modified_at, parse_time
from airflow_mlpipe.reuse.index import INDEX_ROOT
from airflow_mlpipe.reuse.lease import LEASES_ROOT
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.records import RUNS_ROOT
from airflow_mlpipe.steps.snapshot import OBJECTS_ROOT, SNAPSHOTS_ROOT
from airflow_mlpipe.storage.datastore import Datastore

log = logging.getLogger(__name__)

READ_BATCH = 500
FINAL = (records.COMPLETED, records.REUSED, records.FAILED)
# A spec and a record are what the next gc finds a step run by: they go after everything else of the run.
CORE_FILES = ("spec.json", "record.json")

Place = tuple[str, str]  # (datastore, path)
_EPOCH_MS_LIMIT = 10**13 - 1  # as storage.paged inverts times


@dataclass
class RunFacts:
    """One step run folder, as gc sees it."""

    step_run_id: str
    files: dict[str, int] = field(default_factory=dict)  # path → size
    newest_file: dt.datetime | None = None
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    created: dt.datetime | None = None
    status: str | None = None
    key: str | None = None
    ttl: float | None = None
    snapshot: str | None = None
    reused_from: str | None = None
    outputs: list[Mapping[str, Any]] = field(default_factory=list)  # as the record has them
    spec_written: dt.datetime | None = None  # when the store wrote its spec (dates an unsealed one)
    named: set[Place] = field(default_factory=set)  # output and input folders the record names
    named_outputs: set[Place] = field(default_factory=set)  # the output folders alone

    @property
    def folder(self) -> str:
        return records.run_folder(self.step_run_id)

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    @property
    def succeeded(self) -> bool:
        return self.status in records.SUCCEEDED

    @property
    def has_core(self) -> bool:
        return any(f"{self.folder}/{name}" in self.files for name in CORE_FILES)

    def take(self, data: Mapping[str, Any]) -> None:
        """Fill in from a record (or a spec, whose attempt has the same fields)."""
        attempt = as_mapping(data.get("attempt")) or data
        self.dag_id = self.dag_id or _str(attempt.get("dag_id"))
        self.run_id = self.run_id or _str(attempt.get("run_id"))
        self.task_id = self.task_id or _str(attempt.get("task_id"))
        self.created = self.created or parse_time(data.get("created_at") or data.get("started_at"))
        self.snapshot = self.snapshot or _str(data.get("snapshot"))
        reuse = as_mapping(data.get("reuse"))
        self.key = self.key or _str(reuse.get("key"))
        ttl = as_mapping(reuse.get("policy")).get("ttl")
        self.ttl = float(ttl) if isinstance(ttl, (int, float)) else self.ttl
        if "status" in data:
            self.status = _str(data.get("status"))
            self.reused_from = _str(data.get("reused_from"))
            self.outputs = [o for o in data.get("outputs") or () if isinstance(o, Mapping)]
            self.named_outputs = _places(self.outputs)
            self.named |= self.named_outputs | _places(i for i in data.get("inputs") or () if isinstance(i, Mapping))


@dataclass(frozen=True)
class Listed:
    path: str
    size: int
    modified: dt.datetime | None


def _places(entries: Iterable[Mapping[str, Any]]) -> set[Place]:
    return {(str(e["datastore"]), str(e["path"])) for e in entries if e.get("datastore") and e.get("path")}


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one: records are read defensively."""
    return value if isinstance(value, Mapping) else {}


def list_files(store: Datastore, folder: str) -> list[Listed]:
    """Every file below ``folder`` (one recursive listing), with its size and time; none when it is absent."""
    try:
        found = store.list(folder, recursive=True, detail=True)
    except FileNotFoundError:
        return []
    return [
        Listed(path, int(info.get("size") or 0), modified_at(info))
        for path, info in found.items()
        if info.get("type") != "directory" and not path.rsplit("/", 1)[-1].startswith(".")
    ]


class FilesUnder:
    """The files below many folders of one datastore, with few listings: a top folder that holds at least
    ``whole_from`` of them (``dataset/`` in the default layout) is listed once, whole; other folders each alone."""

    def __init__(self, store: Datastore, folders: Iterable[str], *, whole_from: int = 50) -> None:
        by_top: dict[str, list[str]] = {}
        for folder in folders:
            by_top.setdefault(folder.split("/", 1)[0], []).append(folder)
        self._found: dict[str, list[Listed]] = {}
        for top, group in by_top.items():
            if len(group) < whole_from:
                self._found.update((folder, list_files(store, folder)) for folder in group)
                continue
            every = sorted(list_files(store, top), key=lambda item: item.path)
            names = [item.path for item in every]
            for folder in group:
                start = bisect.bisect_left(names, folder + "/")
                end = bisect.bisect_left(names, folder + "0")  # "0" sorts right after "/"
                self._found[folder] = every[start:end]

    def files(self, folder: str) -> list[Listed]:
        return self._found.get(folder, [])


def read_json_batches(store: Datastore, paths: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """(path, parsed JSON or None when missing or unreadable), read ``READ_BATCH`` at a time."""
    batch: list[str] = []
    for path in paths:
        batch.append(path)
        if len(batch) >= READ_BATCH:
            yield from _parse_all(store.read_many(batch))
            batch = []
    if batch:
        yield from _parse_all(store.read_many(batch))


def _parse_all(bodies: Mapping[str, bytes | Exception]) -> Iterator[tuple[str, Any]]:
    for path, body in bodies.items():
        if isinstance(body, Exception):
            yield path, None
            continue
        try:
            yield path, json.loads(body)
        except ValueError:
            log.warning("gc: %s is not readable JSON; left alone", path)
            yield path, None


# -- step runs --------------------------------------------------------------------------------------------------
def scan_runs(store: Datastore) -> dict[str, RunFacts]:
    """Every step run folder (one listing of ``_mlpipe/runs``) and its record, or its spec when it has none."""
    runs: dict[str, RunFacts] = {}
    prefix = RUNS_ROOT + "/"
    written: dict[str, dt.datetime | None] = {}
    for item in list_files(store, RUNS_ROOT):
        srid = item.path[len(prefix) :].split("/", 1)[0]
        run = runs.setdefault(srid, RunFacts(srid))
        run.files[item.path] = item.size
        if item.modified is not None and (run.newest_file is None or item.modified > run.newest_file):
            run.newest_file = item.modified
        if item.path.endswith("/record.json"):
            written[item.path] = item.modified
        elif item.path == records.spec_path(srid):
            run.spec_written = item.modified
    with_record = [records.record_path(s) for s, r in runs.items() if records.record_path(s) in r.files]
    for path, data in read_json_batches(store, with_record):
        srid = path[len(prefix) :].split("/", 1)[0]
        if not isinstance(data, Mapping):
            continue
        refused = records.record_refusal(srid, data, store, written=written.get(path))
        if refused:  # its status and outputs are unknown: the run is kept, as one without a final status
            log.warning("gc: %s", refused)
            continue
        runs[srid].take(data)
    without_record = [r for r in runs.values() if r.created is None]
    for run, spec in _verified_specs(store, without_record):
        run.take(spec)  # one that failed its seal is not: the run stays, as one with an unreadable record
    return runs


def read_specs(store: Datastore, runs: Iterable[RunFacts]) -> dict[str, list[Mapping[str, Any]]]:
    """The outputs each run's spec declares (where its attempt writes, committed or not); a spec that failed its
    seal names none (gc deletes no folder a forged spec names)."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for run, spec in _verified_specs(store, runs):
        outputs = spec.get("outputs")
        found[run.step_run_id] = [o for o in outputs or () if isinstance(o, Mapping) and o.get("path")]
    return found


def _verified_specs(store: Datastore, runs: Iterable[RunFacts]) -> Iterator[tuple[RunFacts, Mapping[str, Any]]]:
    """Each run's spec (read in batches) whose seal holds; a warning names each one refused."""
    by_path = {records.spec_path(r.step_run_id): r for r in runs if records.spec_path(r.step_run_id) in r.files}
    for path, data in read_json_batches(store, by_path):
        run = by_path[path]
        if not isinstance(data, Mapping):
            continue
        refused = records.spec_refusal(run.step_run_id, data, store, written=run.spec_written)
        if refused:
            log.warning("gc: %s", refused)
            continue
        yield run, data


# -- the other records ------------------------------------------------------------------------------------------
def scan_index(store: Datastore) -> dict[str, tuple[Listed, Mapping[str, Any] | None]]:
    """Reuse index entries ``_mlpipe/reuse/<key>.json`` (not the history below it): key → (listing, entry)."""
    try:
        listed = store.list(INDEX_ROOT, detail=True)
    except FileNotFoundError:
        return {}
    files = {
        path: Listed(path, int(info.get("size") or 0), modified_at(info))
        for path, info in listed.items()
        if info.get("type") != "directory" and path.endswith(".json")
    }
    found = {}
    for path, data in read_json_batches(store, files):
        key = path.rsplit("/", 1)[-1].removesuffix(".json")
        found[key] = (files[path], data if isinstance(data, Mapping) else None)
    return found


def scan_leases(store: Datastore) -> dict[str, tuple[list[Listed], Mapping[str, Any] | None]]:
    """Lease folders: key → (its files, its highest generation's record)."""
    folders: dict[str, list[Listed]] = {}
    for item in list_files(store, LEASES_ROOT):
        key = item.path[len(LEASES_ROOT) + 1 :].split("/", 1)[0]
        folders.setdefault(key, []).append(item)
    latest = {}
    for key, items in folders.items():
        numbered = [
            (int(name), i) for i in items if (name := i.path.rsplit("/", 1)[-1].removesuffix(".json")).isdigit()
        ]
        if numbered:
            latest[max(numbered, key=lambda n: n[0])[1].path] = key
    records_by_key: dict[str, Mapping[str, Any] | None] = dict.fromkeys(folders)
    for path, data in read_json_batches(store, latest):
        records_by_key[latest[path]] = data if isinstance(data, Mapping) else None
    return {key: (items, records_by_key[key]) for key, items in folders.items()}


def scan_registry(store: Datastore) -> list[Mapping[str, Any]]:
    """Every dataset version record (the registry is never collected: its records say what must stay)."""
    paths = [
        item.path
        for item in list_files(store, REGISTRY_ROOT)
        if item.path.endswith(".json") and not item.path.endswith("/" + LATEST_POINTER)
    ]
    return [data for _, data in read_json_batches(store, paths) if isinstance(data, Mapping)]


def scan_snapshots(store: Datastore) -> dict[str, list[Listed]]:
    """Snapshot records and packs: tree digest → its files (the record first: it is the snapshot's commit point)."""
    found: dict[str, list[Listed]] = {}
    for item in list_files(store, SNAPSHOTS_ROOT):
        digest, _, ext = item.path.rsplit("/", 1)[-1].rpartition(".")
        if digest and ext in ("json", "pack"):
            found.setdefault(digest, []).append(item)
    for items in found.values():
        items.sort(key=lambda i: not i.path.endswith(".json"))
    return found


def scan_objects(store: Datastore) -> list[Listed]:
    return list_files(store, OBJECTS_ROOT)


def tree_objects(store: Datastore, digests: Iterable[str]) -> set[str]:
    """The content objects the snapshot trees ``digests`` name (files outside their pack)."""
    from airflow_mlpipe.steps.snapshot import tree_path

    needed: set[str] = set()
    for _, data in read_json_batches(store, (tree_path(d) for d in digests)):
        if not isinstance(data, Mapping):
            continue
        limit = int(as_mapping(data.get("pack")).get("max_file") or 0)
        for entry in as_mapping(data.get("entries")).values():
            if isinstance(entry, Mapping) and entry.get("digest") and int(entry.get("size") or 0) >= limit:
                needed.add(str(entry["digest"]))
    return needed


def name_time(path: str) -> dt.datetime | None:
    """The moment a newest-first name (``<day>/<inverted ms>_<unique>.json``) encodes, or a legacy history
    name's leading ISO time."""
    stem = path.rsplit("/", 1)[-1].removesuffix(".json").split("_", 1)[0]
    if stem.isdigit() and len(stem) == 13:
        return dt.datetime.fromtimestamp((_EPOCH_MS_LIMIT - int(stem)) / 1000, dt.UTC)
    return parse_time(stem)
