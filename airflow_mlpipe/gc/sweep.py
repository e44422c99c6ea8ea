"""The sweep: delete what a plan lists, kind by kind in the plan's order, in batches, tolerating what another gc
deleted first. Reuse index entries go first; then the step runs that started reusing a swept run meanwhile are
looked up, and that run is spared. A sweep stopped anywhere leaves each swept run's spec and record in place until
its last step, so the next gc plans it again and finishes; so does an output that could not be deleted (its run is
spared). On a local datastore nothing is deleted through a symbolic link (``storage/local_delete.py``): a link in a
step run's own folder is removed as a link, one above it is refused, and the files a link names are never touched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial

from airflow_mlpipe.gc.model import KINDS, GcItem, GcPlan, GcReport
from airflow_mlpipe.gc.scan import CORE_FILES, as_mapping, name_time, read_json_batches
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.run_index import scope_folder
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore
from airflow_mlpipe.storage.local_delete import link_on_the_way, remove_without_following
from airflow_mlpipe.storage.paged import list_page, unique_of

log = logging.getLogger(__name__)

_WORKERS = 8  # concurrent delete batches


def sweep(plan: GcPlan, store: Datastore) -> GcReport:
    """Delete the plan's items from ``store`` (and the output datastores they name)."""
    clock = time.monotonic()
    report = GcReport(plan, dry_run=False)
    spared: set[str] = set()
    spared_snapshots: set[str] = set()
    stores = {store.name: store}
    batch = plan.settings.batch_size
    for kind in KINDS:
        if kind == "snapshot":  # step runs started since the first look may use one: look again, just before
            spared_snapshots |= _look_again(store, plan, report, spared_snapshots)[1]
        items = [i for i in plan.items if i.kind == kind and not _spared(i, spared, spared_snapshots)]
        if kind == "content object" and spared_snapshots:
            report.spared.append("content objects: left for the next gc, since a spared snapshot may name some")
        elif kind == "snapshot":
            spared_snapshots |= _delete_snapshots(items, stores, report, batch_size=batch)
        else:
            kept = _delete_items(items, stores, report, batch_size=batch)
            if kind == "output":  # a run whose output stays keeps its record (and snapshot) for the next gc
                left = _runs_left(kept, report, spared)
                spared |= left
                spared_snapshots |= {plan.swept_snapshots[s] for s in left if s in plan.swept_snapshots}
        if kind == "reuse index entry":  # from here on no decision can hit a swept run: see who already did
            spared, spared_snapshots = _look_again(store, plan, report, spared_snapshots)
    if store.is_local:
        _prune_empty_folders(plan, store, spared)
    report.spared = list(dict.fromkeys(report.spared))  # (each look again names what the one before did)
    report.sweep_seconds = time.monotonic() - clock
    return report


def _runs_left(kept: list[GcItem], report: GcReport, spared: set[str]) -> set[str]:
    """The step runs of the outputs not deleted: they are spared, so that the next gc plans them again."""
    runs = {item.step_run_id for item in kept if item.step_run_id} - spared
    report.spared += [
        f"step run {s}: an output of it was not deleted (see the errors); the next gc tries again" for s in sorted(runs)
    ]
    return runs


def _look_again(store: Datastore, plan: GcPlan, report: GcReport, known: set[str]) -> tuple[set[str], set[str]]:
    runs, snapshots = _needed_meanwhile(store, plan)
    report.spared += [f"step run {s}: a step run started since reuses its outputs" for s in sorted(runs)]
    report.spared += [f"snapshot {d}: a step run started since uses it" for d in sorted(snapshots - known)]
    return runs, snapshots | known


def _delete_snapshots(
    items: list[GcItem], stores: dict[str, Datastore], report: GcReport, *, batch_size: int
) -> set[str]:
    """Snapshot records first, then the packs of those whose record is still gone. A step storing the same tree
    in between finds no record and writes it again (its pack is there, so it writes only the record): that
    snapshot is in use again and keeps its pack. Returns the digests revived so."""
    records_only = [replace(i, paths=tuple(p for p in i.paths if p.endswith(".json")), bytes=0) for i in items]
    _delete_items([i for i in records_only if i.paths], stores, report, batch_size=batch_size)
    report.deleted -= sum(1 for i in records_only if i.paths)  # counted once, with the pack
    revived = {_digest(i) for i in items if stores[i.datastore].exists(_record_of(i))}
    report.spared += [f"snapshot {d}: stored again by a step run during the sweep" for d in sorted(revived)]
    packs = [replace(i, paths=tuple(p for p in i.paths if not p.endswith(".json"))) for i in items]
    _delete_items(
        [p for i, p in zip(items, packs, strict=True) if _digest(i) not in revived],
        stores,
        report,
        batch_size=batch_size,
    )
    return revived


def _record_of(item: GcItem) -> str:
    return item.paths[0].rpartition(".")[0] + ".json"


def _digest(item: GcItem) -> str:
    return item.paths[0].rsplit("/", 1)[-1].rpartition(".")[0]


def _spared(item: GcItem, runs: set[str], snapshots: set[str]) -> bool:
    if item.step_run_id in runs and item.kind not in ("reuse index entry",):
        return True
    return item.kind == "snapshot" and _digest(item) in snapshots


def _needed_meanwhile(store: Datastore, plan: GcPlan) -> tuple[set[str], set[str]]:
    """Swept step runs and snapshots that step runs made since the plan's scan need: the run a hit reused (its
    summary says ``reused_from``) and the snapshot a run fetches (its record names it). Only runs made within
    the grace period are read: every earlier one was in the plan."""
    swept = plan.swept_runs
    if not swept and not plan.swept_snapshots:
        return set(), set()
    since = (_plan_time(plan) or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=plan.settings.grace)
    runs: set[str] = set()
    fresh_ids: list[str] = []
    token: str | None = None
    while True:
        page = list_page(store, scope_folder(), limit=200, token=token)
        fresh = [p for p in page.paths if (name_time(p) or since) >= since]
        bodies = {**page.inline, **store.read_many([p for p in fresh if p not in page.inline])}
        for path in fresh:
            fresh_ids.append(unique_of(path))
            summary = as_mapping(_json(bodies.get(path)))
            if summary.get("reused_from") in swept:
                runs.add(str(summary["reused_from"]))
        if len(fresh) < len(page.paths) or page.next_token is None:
            break
        token = page.next_token
    wanted = set(plan.swept_snapshots.values())
    record_paths = [records.record_path(srid) for srid in fresh_ids if srid and srid not in swept]
    snapshots = {str(r.get("snapshot")) for _, r in read_json_batches(store, record_paths) if isinstance(r, Mapping)}
    return runs, (snapshots & wanted) | {plan.swept_snapshots[s] for s in runs if s in plan.swept_snapshots}


def _json(body: bytes | Exception | None) -> object:
    try:
        return json.loads(body) if isinstance(body, bytes) else None
    except ValueError:
        return None


def _plan_time(plan: GcPlan) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(plan.started_at)
    except ValueError:
        return None


def _waves(item: GcItem) -> list[list[str]]:
    """An item's paths in the order they must go: an output's completion marker before its files, a step run's
    spec and record after its other files, a snapshot's record (its commit point) before its pack."""
    if item.kind in ("step run", "output"):
        last = CORE_FILES if item.kind == "step run" else ()
        first = (COMPLETE_MARKER,) if item.kind == "output" else ()
        names = [p.rsplit("/", 1)[-1] for p in item.paths]
        return [
            [p for p, n in zip(item.paths, names, strict=True) if n in first],
            [p for p, n in zip(item.paths, names, strict=True) if n not in first and n not in last],
            [p for p, n in zip(item.paths, names, strict=True) if n in last],
        ]
    return [[p] for p in item.paths]


def _delete_items(
    items: list[GcItem], stores: dict[str, Datastore], report: GcReport, *, batch_size: int
) -> list[GcItem]:
    """Delete the items, store by store; returns those not (wholly) deleted."""
    kept: list[GcItem] = []
    by_store: dict[tuple[str, bool], list[GcItem]] = {}
    for item in items:
        by_store.setdefault((item.datastore, item.recursive), []).append(item)
    for (name, recursive), group in by_store.items():
        if name not in stores:
            stores[name] = Datastore.get(name)
        store = stores[name]
        failed: set[int] = set()
        unlinked: set[int] = set()
        owned = [_run_folder_of(item) for item in group]
        waves = [_waves(item) for item in group]
        for wave in range(max((len(w) for w in waves), default=0)):
            paths = [(n, p) for n, w in enumerate(waves) if wave < len(w) and n not in failed for p in w[wave]]
            size = max(1, min(batch_size, -(-len(paths) // _WORKERS)))  # every worker busy, no batch too big
            batches = [paths[start : start + size] for start in range(0, len(paths), size)]
            with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
                delete = partial(_delete_batch, store, recursive=recursive, report=report, owned=owned)
                for lost, links in pool.map(delete, batches):
                    failed |= lost
                    unlinked |= links
        for n, item in enumerate(group):
            if n in failed:
                kept.append(item)
                continue
            report.deleted += 1
            if n not in unlinked:  # the files a removed link led to were not the store's, and stay
                report.bytes_reclaimed += item.bytes or 0
    return kept


def _delete_batch(
    store: Datastore,
    batch: list[tuple[int, str]],
    *,
    recursive: bool,
    report: GcReport,
    owned: list[str | None],
) -> tuple[set[int], set[int]]:
    """Delete a batch in one call; on a path already gone (another gc), path by path. The items that failed, and
    (on a local store) those where a link was removed instead of followed."""
    if store.is_local:
        return _delete_local(store, batch, recursive=recursive, report=report, owned=owned)
    # adlfs would look up each named file before deleting it (one request each): files need no expanding
    options = {"expand_path": False} if not recursive and store.protocol in ("abfs", "az") else {}
    try:
        store.fs.rm([store.full_path(p) for _, p in batch], recursive=recursive, **options)
        return set(), set()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("gc: a batch delete in datastore %s failed (%s); deleting one by one", store.name, exc)
    failed = set()
    for n, path in batch:
        try:
            store.delete(path, recursive=recursive, missing_ok=True)
        except Exception as exc:  # one path that cannot go must not stop the others
            report.errors.append(f"{store.name}:{path}: {exc}")
            failed.add(n)
    return failed, set()


def _delete_local(
    store: Datastore,
    batch: list[tuple[int, str]],
    *,
    recursive: bool,
    report: GcReport,
    owned: list[str | None],
) -> tuple[set[int], set[int]]:
    """Path by path, never through a symbolic link: a link in the item's step run folder goes as a link (the
    files it leads to are not the datastore's), one above it is an error naming it (nothing deleted)."""
    failed, unlinked = set(), set()
    for n, path in batch:
        try:
            removed = remove_without_following(store, path, recursive=recursive, owned=owned[n])
        except Exception as exc:  # one path that cannot go must not stop the others
            report.errors.append(f"{store.name}:{path}: {exc}")
            failed.add(n)
            continue
        if removed is not None:
            unlinked.add(n)
            note = (
                f"{store.name}:{removed.link}: a symbolic link (to {removed.target}), removed as a link; the files "
                "it leads to are not the datastore's and were left as they are"
            )
            log.warning("gc: %s", note)
            report.spared.append(note)
    return failed, unlinked


def _run_folder_of(item: GcItem) -> str | None:
    """The folder a swept step run owns, where a link is removed as a link: its record folder, or, in the default
    layout ``.../{run-id}/{output-name}``, its output folder ``.../{run-id}``."""
    if item.kind == "step run" and item.step_run_id:
        return records.run_folder(item.step_run_id)
    if item.kind in ("output", "staging leftover") and item.step_run_id and item.paths:
        parts = item.paths[0].split("/")
        if item.step_run_id in parts[:-1]:
            return "/".join(parts[: parts.index(item.step_run_id) + 1])
    return None


def _prune_empty_folders(plan: GcPlan, store: Datastore, spared: Iterable[str]) -> None:
    """On a local datastore, the folders a swept run owned: its record folder and, in the default layout
    ``.../{run-id}/{output-name}``, the run's output folder. Never a folder another writer may be creating in."""
    skip = set(spared)
    folders: list[str] = []
    for item in plan.items:
        if item.step_run_id in skip or item.datastore != store.name or item.kind not in ("step run", "output"):
            continue
        folder = _run_folder_of(item)
        if folder is not None and link_on_the_way(store, folder) is None:  # os.walk would follow it
            folders.append(store.full_path(folder))
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:  # a folder costs a few ms on some filesystems
        list(pool.map(_remove_empty_tree, folders))


def _remove_empty_tree(full: str) -> None:
    for dirpath, _, _ in sorted(os.walk(full), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):  # not empty (or gone): left as it is
            os.rmdir(dirpath)
