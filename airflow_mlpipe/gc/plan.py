"""Mark and sweep: which step runs stay (the roots), and from them, every other thing mlpipe wrote that no kept
thing needs. Nothing is decided from output files: the records say where outputs are, what they weigh and who
made them.

Roots: the files of every registered dataset version (and the step run that produced it), step runs made within
``older_than`` or among the ``keep_last`` newest DAG runs of their task, attempts without a final status (and every
attempt of their DAG run), the step run and key of every held lease, and whatever a kept run reused or names. A
reuse index entry stays while its run stays and its reuse TTL lasts; a snapshot while a kept run uses it. Nothing
made within the grace period is deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.exceptions import ConfigError, DatastoreNotFoundError
from airflow_mlpipe.gc import scan
from airflow_mlpipe.gc.model import KINDS, GcItem, GcPlan, GcSettings, describe_duration, parse_time
from airflow_mlpipe.gc.scan import Listed, Place, RunFacts, as_mapping
from airflow_mlpipe.reuse.history import HISTORY_ROOT, LEGACY_ROOT
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.reuse.lease import DEFAULT_CLOCK_SKEW, LeaseRecord, Leases
from airflow_mlpipe.steps.readers import LINEAGE_ROOT
from airflow_mlpipe.steps.records import COMMITTED, COMPLETED, REUSED, now_iso
from airflow_mlpipe.steps.run_index import RUN_INDEX_ROOT
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore
from airflow_mlpipe.storage.paged import unique_of

log = logging.getLogger(__name__)

# Newest-first entries that name a step run (``<day>/<inverted time>_<step_run_id>.json``), by kind. Only these
# folders: another index may name other things the same way.
POINTER_ROOTS = {
    RUN_INDEX_ROOT: "run summary",
    LINEAGE_ROOT: "lineage entry",
    HISTORY_ROOT: "history entry",
    LEGACY_ROOT: "history entry",
}


class Protected:
    """Folders that must stay, with every folder above and below them: ``covers(p)`` when ``p`` is one of them,
    holds one, or lies inside one."""

    def __init__(self) -> None:
        self._places: set[Place] = set()
        self._above: set[Place] = set()

    def add(self, datastore: str, path: str) -> None:
        path = path.strip("/")
        self._places.add((datastore, path))
        parts = path.split("/")
        for n in range(1, len(parts)):
            self._above.add((datastore, "/".join(parts[:n])))

    def covers(self, datastore: str, path: str) -> bool:
        path = path.strip("/")
        if (datastore, path) in self._places or (datastore, path) in self._above:
            return True
        parts = path.split("/")
        return any((datastore, "/".join(parts[:n])) in self._places for n in range(1, len(parts)))


def make_plan(store: Datastore, settings: GcSettings, *, now: dt.datetime | None = None) -> GcPlan:
    """What a gc of ``store`` (the default datastore: the one holding the records) would delete, and why."""
    clock = time.monotonic()
    now = now or dt.datetime.now(dt.UTC)
    plan = GcPlan(settings, store.name, now_iso())
    marker = _Marker(store, settings, now, plan)
    marker.mark()
    marker.sweep_list()
    plan.plan_seconds = time.monotonic() - clock
    return plan


class _Marker:
    def __init__(self, store: Datastore, settings: GcSettings, now: dt.datetime, plan: GcPlan) -> None:
        self.store, self.settings, self.now, self.plan = store, settings, now, plan
        self.grace_line = now - dt.timedelta(seconds=settings.grace)
        self.horizon = now - dt.timedelta(seconds=settings.older_than)
        self.unfinished_line = now - dt.timedelta(seconds=settings.unfinished_for)
        self.kept: dict[str, str] = {}  # step run → why it stays
        self.garbage: dict[str, str] = {}  # step run → the rule that sweeps it
        self.registered = Protected()
        self.named = Protected()
        self.held_keys: set[str] = set()

    # -- marking ------------------------------------------------------------------------------------------------
    def mark(self) -> None:
        self.runs = scan.scan_runs(self.store)
        self.plan.runs_scanned = len(self.runs)
        self.leases = scan.scan_leases(self.store)
        held_runs = self._held_leases()
        producers = self._registered_versions()
        last = self._last_of_each_task()
        running: set[tuple[str | None, str | None]] = set()
        for run in self.runs.values():
            why = self._root(run, held_runs, producers, last)
            if why is None:
                self.garbage[run.step_run_id] = self._rule(run)
                continue
            self.kept[run.step_run_id] = why
            if why.startswith("unfinished"):
                running.add((run.dag_id, run.run_id))
        for run in self.runs.values():  # every attempt of a DAG run still running stays
            if run.step_run_id in self.garbage and (run.dag_id, run.run_id) in running:
                self._keep(run.step_run_id, "its DAG run is still running")
        self._keep_what_kept_runs_need()
        for why in self.kept.values():
            rule = why.split(":", 1)[0]
            self.plan.kept[rule] = self.plan.kept.get(rule, 0) + 1

    def _root(
        self,
        run: RunFacts,
        held_runs: set[str],
        producers: Mapping[str, str],
        last: set[str],
    ) -> str | None:
        """Why ``run`` stays by itself (None: it is garbage unless something kept needs it)."""
        if self.settings.dag_id and run.dag_id != self.settings.dag_id:
            return "another DAG"
        if run.created is None:
            newest = run.newest_file
            if run.has_core or newest is None or newest > self.grace_line:
                return "unreadable or new record"
            return None  # files of a run whose spec and record are gone: an interrupted gc's leftovers
        if run.created > self.grace_line:
            return "within the grace period"
        if run.created > self.horizon:
            return f"newer than {describe_duration(self.settings.older_than)}"
        if not run.finished and run.created > self.unfinished_line:
            return "unfinished (may still be running)"
        if run.step_run_id in held_runs:
            return "holds a lease"
        if run.step_run_id in producers:
            return f"produced a registered dataset version: {producers[run.step_run_id]}"
        if run.step_run_id in last:
            return f"among the last {self.settings.keep_last} of its task"
        return None

    def _rule(self, run: RunFacts) -> str:
        if run.created is None:
            return "left over: no spec or record"
        rule = f"older than {describe_duration(self.settings.older_than)}"
        if self.settings.keep_last:
            rule += f" and not among the last {self.settings.keep_last} of its task"
        return rule

    def _keep(self, srid: str, why: str) -> None:
        self.garbage.pop(srid, None)
        self.kept.setdefault(srid, why)

    def _keep_what_kept_runs_need(self) -> None:
        """A kept run keeps every folder its record names (its outputs and inputs), the run it reused and the
        runs that committed the folders it read: their records are what a later gc deletes those folders by."""
        committed_by = {
            place: run.step_run_id
            for run in self.runs.values()
            if run.status in (COMPLETED, COMMITTED)
            for place in run.named_outputs
        }
        pending = list(self.kept)
        while pending:
            run = self.runs.get(pending.pop())
            if run is None:
                continue
            for place in run.named:
                self.named.add(*place)
            needed = [(run.reused_from, "reused by")] + [(committed_by.get(p), "read by") for p in run.named]
            for source, how in needed:
                if source and source in self.garbage:
                    self._keep(source, f"{how} a kept step run: {run.step_run_id}")
                    pending.append(source)

    def _held_leases(self) -> set[str]:
        """Keys with a live holder, and the step runs holding them."""
        held = set()
        now = self.now.timestamp()
        for key, (_, data) in self.leases.items():
            record = _lease(data)
            if record is not None and not record.is_free(now, DEFAULT_CLOCK_SKEW):
                self.held_keys.add(key)
                if record.info.get("step_run_id"):
                    held.add(str(record.info["step_run_id"]))
        return held

    def _registered_versions(self) -> dict[str, str]:
        """Protect every registered version's folders and files; the step runs that produced versions."""
        producers: dict[str, str] = {}
        for data in scan.scan_registry(self.store):
            name = f"{data.get('name')}:{data.get('version')}"
            for path in as_mapping(data.get("definition")).get("paths") or ():
                if isinstance(path, Mapping) and path.get("datastore") and path.get("path"):
                    self.registered.add(str(path["datastore"]), _glob_free(str(path["path"])))
            for entry in as_mapping(data.get("manifest")).get("entries") or ():
                if isinstance(entry, Mapping) and entry.get("datastore") and entry.get("path"):
                    self.registered.add(str(entry["datastore"]), str(entry["path"]))
            lineage = as_mapping(data.get("lineage"))
            for srid in (lineage.get("step_run_id"), lineage.get("reused_from")):
                if srid:
                    producers.setdefault(str(srid), name)
        return producers

    def _last_of_each_task(self) -> set[str]:
        """The successful attempts of each task in its ``keep_last`` newest DAG runs."""
        if not self.settings.keep_last:
            return set()
        by_task: dict[tuple[str | None, str | None], list[RunFacts]] = {}
        for run in self.runs.values():
            if run.succeeded and run.created is not None:
                by_task.setdefault((run.dag_id, run.task_id), []).append(run)
        keep = set()
        for runs in by_task.values():
            runs.sort(key=lambda r: r.created or self.now, reverse=True)
            dag_runs: list[str | None] = []
            for run in runs:
                if run.run_id not in dag_runs:
                    if len(dag_runs) == self.settings.keep_last:
                        break
                    dag_runs.append(run.run_id)
                keep.add(run.step_run_id)
        return keep

    # -- sweeping -----------------------------------------------------------------------------------------------
    def sweep_list(self) -> None:
        items: list[GcItem] = []
        items += self._index_entries()
        items += self._pointers()
        items += self._outputs()
        items += self._leases_to_drop()
        items += self._snapshots_and_objects()
        items += self._run_folders()
        order = {kind: n for n, kind in enumerate(KINDS)}
        self.plan.items = sorted(items, key=lambda i: order[i.kind])  # stable: each kind keeps its order

    def _index_entries(self) -> list[GcItem]:
        items = []
        for key, (listed, data) in scan.scan_index(self.store).items():
            srid = str((data or {}).get("step_run_id") or "")
            dag_id = _str((data or {}).get("dag_id"))
            if key in self.held_keys or (self.settings.dag_id and dag_id != self.settings.dag_id):
                continue
            made = parse_time((data or {}).get("created_at")) or listed.modified
            if made is None or made > self.grace_line:
                continue
            rule = self._index_rule(srid, made)
            if rule is not None:
                items.append(
                    GcItem(
                        "reuse index entry",
                        self.store.name,
                        (ReuseIndex.path(key),),
                        rule,
                        dag_id,
                        srid or None,
                        listed.size,
                    )
                )
        return items

    def _index_rule(self, srid: str, made: dt.datetime) -> str | None:
        if not srid:
            return "unreadable entry"
        if srid in self.garbage:
            return "its step run is swept"
        run = self.runs.get(srid)
        if run is None:
            return "its step run is gone"
        if run.ttl is not None and (self.now - made).total_seconds() > run.ttl:
            return f"past its reuse TTL ({run.ttl:g} s)"
        return None

    def _pointers(self) -> list[GcItem]:
        """Newest-first entries naming a step run: run summaries, lineage (readers) entries, reuse history."""
        items = []
        for root, kind in POINTER_ROOTS.items():
            for listed in scan.list_files(self.store, root):
                srid = unique_of(listed.path)
                if not srid:
                    continue
                rule = self._pointer_rule(srid, listed)
                if rule is None:
                    continue
                run = self.runs.get(srid)
                dag_id = run.dag_id if run is not None else None
                items.append(GcItem(kind, self.store.name, (listed.path,), rule, dag_id, srid, listed.size))
        return items

    def _pointer_rule(self, srid: str, listed: Listed) -> str | None:
        if srid in self.garbage:
            return "points at a swept step run"
        if srid in self.runs or self.settings.dag_id:
            return None
        made = scan.name_time(listed.path) or listed.modified
        if made is None or made > self.grace_line:
            return None
        return "points at a step run that is gone"

    def _outputs(self) -> list[GcItem]:
        """The output folders that swept attempts wrote (committed or left over), where no kept thing needs them."""
        garbage = [self.runs[s] for s in self.garbage]
        unfinished = [self.runs[s] for s in self.kept if not self.runs[s].finished]
        specs = scan.read_specs(self.store, [*garbage, *unfinished])
        for run in unfinished:  # where a live attempt writes, whatever else wrote there before
            for output in specs.get(run.step_run_id, ()):
                self.named.add(str(output.get("datastore")), str(output.get("path")))
        wanted: list[tuple[RunFacts, Place]] = []
        for run in garbage:
            if run.status == REUSED:
                continue  # a hit writes into no folder of its own: its record names the earlier run's outputs
            for output in specs.get(run.step_run_id, ()):
                place = (str(output.get("datastore")), str(output.get("path")))
                if self.registered.covers(*place):
                    self.plan.notes.append(f"kept {place[0]}:{place[1]}: files of a registered dataset version")
                elif not self.named.covers(*place):
                    wanted.append((run, place))
        items = []
        for datastore in dict.fromkeys(place[0] for _, place in wanted):
            mine = [(run, path) for run, (name, path) in wanted if name == datastore]
            try:
                target = self.store if datastore == self.store.name else Datastore.get(datastore)
                found = scan.FilesUnder(target, [path for _, path in mine])
                for run, path in mine:
                    items += self._output(run, datastore, path, found.files(path), _staging_leftovers(target, path))
            except (DatastoreNotFoundError, ConfigError) as exc:
                self.plan.notes.append(f"skipped the outputs in datastore {datastore}: {exc}")
        return items

    def _output(
        self, run: RunFacts, datastore: str, path: str, files: list[Listed], leftovers: list[Listed]
    ) -> list[GcItem]:
        """An output's files (its completion marker first: a reader sees it incomplete before it sees it partial)
        and the staging folders a killed attempt left beside it."""
        rule = self.garbage[run.step_run_id]
        items = []
        if files:
            paths = sorted((f.path for f in files), key=lambda p: not p.endswith("/" + COMPLETE_MARKER))
            size = sum(f.size for f in files)
            items.append(GcItem("output", datastore, tuple(paths), rule, run.dag_id, run.step_run_id, size))
        for listed in leftovers:
            if listed.modified is None or listed.modified > self.grace_line:
                continue
            items.append(
                GcItem(
                    "staging leftover",
                    datastore,
                    (listed.path,),
                    rule,
                    run.dag_id,
                    run.step_run_id,
                    listed.size,
                    recursive=True,
                )
            )
        return items

    def _leases_to_drop(self) -> list[GcItem]:
        items = []
        for key, (files, data) in self.leases.items():
            if key in self.held_keys:
                continue
            record = _lease(data)
            if self.settings.dag_id and (record is None or record.info.get("dag_id") != self.settings.dag_id):
                continue
            newest = max((f.modified for f in files if f.modified is not None), default=None)
            if newest is None or newest > self.grace_line:
                continue
            rule = "released or expired" if record is not None else "unreadable"
            dag_id = _str(record.info.get("dag_id")) if record is not None else None
            size = sum(f.size for f in files)
            items.append(
                GcItem("lease", self.store.name, (Leases.folder(key),), rule, dag_id, None, size, recursive=True)
            )
        return items

    def _snapshots_and_objects(self) -> list[GcItem]:
        used = {r.snapshot for s, r in self.runs.items() if s in self.kept and r.snapshot}
        swept_by = {r.snapshot for s, r in self.runs.items() if s in self.garbage and r.snapshot}
        self.plan.swept_snapshots = {s: str(self.runs[s].snapshot) for s in self.garbage if self.runs[s].snapshot}
        items, staying = [], []
        for digest, files in scan.scan_snapshots(self.store).items():
            newest = max((f.modified for f in files if f.modified is not None), default=None)
            young = newest is None or newest > self.grace_line
            if digest in used or young or (self.settings.dag_id and digest not in swept_by):
                staying.append(digest)
                continue
            rule = "used by swept step runs only" if digest in swept_by else "used by no step run"
            paths = tuple(f.path for f in files)
            items.append(GcItem("snapshot", self.store.name, paths, rule, None, None, sum(f.size for f in files)))
        if self.settings.dag_id:
            return items  # content objects are shared by every DAG's snapshots: a whole-store gc collects them
        objects = scan.scan_objects(self.store)
        if objects:
            needed = scan.tree_objects(self.store, staying)
            for obj in objects:
                digest = obj.path.rsplit("/", 1)[-1]
                if digest in needed or obj.modified is None or obj.modified > self.grace_line:
                    continue
                items.append(
                    GcItem("content object", self.store.name, (obj.path,), "in no kept snapshot", None, None, obj.size)
                )
        return items

    def _run_folders(self) -> list[GcItem]:
        items = []
        for srid, rule in self.garbage.items():
            run = self.runs[srid]
            core = [f"{run.folder}/{name}" for name in scan.CORE_FILES]
            paths = tuple([p for p in run.files if p not in core] + [p for p in core if p in run.files])
            size = sum(run.files.values())
            items.append(GcItem("step run", self.store.name, paths, rule, run.dag_id, srid, size))
        return items


def _lease(data: Mapping[str, Any] | None) -> LeaseRecord | None:
    if data is None:
        return None
    try:
        return LeaseRecord.from_dict(data)
    except (ValueError, KeyError, TypeError):
        return None


def _staging_leftovers(store: Datastore, path: str) -> list[Listed]:
    """Staging folders an attempt killed on a local datastore left beside its output (``.<name>.staging-*``)."""
    if not store.is_local:
        return []  # elsewhere an attempt stages on its compute, and what it staged at the destination is the output
    parent, _, name = path.strip("/").rpartition("/")
    try:
        entries = store.list(parent, detail=True)
    except FileNotFoundError:
        return []
    prefix = f"{parent}/.{name}.staging-" if parent else f".{name}.staging-"
    found = []
    for leftover in (p for p in entries if p.startswith(prefix)):
        inside = scan.list_files(store, leftover)  # its files' times, not the folder's: a live attempt writes files
        newest = max((i.modified for i in inside if i.modified is not None), default=None)
        found.append(Listed(leftover, sum(i.size for i in inside), newest))
    return found


def _glob_free(path: str) -> str:
    """The folder part of a path before its first glob character (the whole path when it has none)."""
    for n, char in enumerate(path):
        if char in "*?[":
            return path[:n].rpartition("/")[0]
    return path


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
