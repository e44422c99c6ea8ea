"""A version registered from a transfer's copy keeps its files: the copy's marker learns that it was registered.

A transfer mirrors its own earlier copy of a source (files the source dropped are removed) and, with
``overwrite``, replaces files that differ. Both stop at a folder whose marker names a registered version
(``storage/transfer.py``). ``DataTransferOperator`` writes that name when it registers its copy; a version
registered by hand, ``Dataset.File.from_files(path=(store, "copies/raw")).register("raw")``, does so here: each
transfer copy holding a file of the new version (at, above or below the dataset's paths) gets ``registered`` in
its marker. A folder a step committed needs nothing: nothing writes into a committed output.

Cost: one GET of the marker path for each folder level above each dataset path and for each marker the
registration's listing met (all at once), a glob per folder level of a glob's pattern, and, the first time, a
conditional write for each copy found (``bench/bench_register_files.py``). The write is conditional on the marker
read: a transfer that rewrites the marker meanwhile makes it read again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow_mlpipe.datasets.paths import DataPath, fixed_part
from airflow_mlpipe.exceptions import DatasetError
from airflow_mlpipe.storage.conditional import read_tagged, replace_if_unchanged
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore

log = logging.getLogger(__name__)


def marker_folders_above(data_path: DataPath) -> list[str]:
    """Folders above ``data_path`` (at and above a glob's fixed part) whose marker must be asked for. A folder
    path's own marker is not: the registration's listing of it met it already."""
    parts = [p for p in fixed_part(data_path).split("/") if p]
    if parts and not data_path.is_glob:
        parts = parts[:-1]  # a file's folder and those above; a folder's own marker is in the listing
    return ["/".join(parts[:depth]) for depth in range(len(parts), 0, -1)]


def marker_folders_in_glob(store: Datastore, data_path: DataPath) -> set[str]:
    """Folders below the fixed part of a glob, at the levels its pattern reaches, that hold a completion marker."""
    parts = data_path.path.split("/")
    fixed = len([p for p in fixed_part(data_path).split("/") if p])
    found: set[str] = set()
    for depth in range(fixed + 1, len(parts)):
        for path in store.glob("/".join([*parts[:depth], COMPLETE_MARKER])):
            found.add(path.rpartition("/")[0])
    return found


def mark_registered_copies(
    record: Any, data_paths: Iterable[DataPath], below: Mapping[str, set[str]]
) -> list[tuple[str, str]]:
    """Write ``registered`` into the marker of each transfer copy that holds a file of ``record`` (a new or
    unchanged version); ``below``: the marker folders each datastore's listings met. Returns (datastore, folder)
    for each marker written."""
    files: dict[str, list[str]] = {}
    for entry in record.manifest.entries:
        files.setdefault(entry.datastore, []).append(entry.path)
    asks: dict[tuple[str, str], Datastore] = {}
    for data_path in data_paths:
        store = Datastore.get(data_path.datastore)
        folders = {*marker_folders_above(data_path), *below.get(store.name, ())}
        if data_path.is_glob:
            folders |= marker_folders_in_glob(store, data_path)
        for folder in folders:
            if any(path.startswith(folder + "/") for path in files.get(store.name, ())):
                asks[(store.name, folder)] = store
    if not asks:
        return []
    # one GET per folder, all at once: a marker that is absent costs that GET only
    with ThreadPoolExecutor(max_workers=min(8, len(asks)), thread_name_prefix="mlpipe-marks") as pool:
        marked = list(pool.map(lambda item: _mark(item[1], item[0][1], record), asks.items()))
    return [where for where, done in zip(asks, marked, strict=True) if done]


def _mark(store: Datastore, folder: str, record: Any) -> bool:
    """Add ``registered`` to a plain transfer copy's marker, by a conditional write: a transfer that rewrote the
    marker meanwhile makes it read again."""
    path = store.marker_path(folder)
    for _ in range(5):
        tagged = read_tagged(store, path)
        if tagged is None:
            return False
        try:
            marker = json.loads(tagged.data)
        except ValueError:
            return False
        if not isinstance(marker, dict) or "transfer" not in marker:
            return False
        if marker.get("step_run_id") or marker.get("registered"):
            return False  # a committed step output, or a copy that a version keeps already
        updated = {**marker, "registered": {"name": record.name, "version": record.version}}
        data = json.dumps(updated, sort_keys=True, separators=(",", ":"), default=str).encode()
        if replace_if_unchanged(store, path, data, tagged.tag):
            log.info(
                "dataset %s version %d names files of the transfer copy %r in datastore %r: later transfers into "
                "it keep them",
                record.name,
                record.version,
                folder,
                store.name,
            )
            return True
    raise DatasetError(
        f"dataset {record.name!r} version {record.version}: the marker of the transfer copy {folder!r} in datastore "
        f"{store.name!r} kept changing while the registration was written into it: a transfer into that folder is "
        "running; register again once it has finished"
    )
