"""A version registered from a transfer's copy keeps its files: the copy's marker learns that it was registered.

A transfer mirrors its own earlier copy of a source (files the source dropped are removed) and, with
``overwrite``, replaces files that differ. Both stop at a folder whose marker names a registered version
(``storage/transfer.py``). ``DataTransferOperator`` writes that name when it registers its copy; a version
registered by hand, ``Dataset.File.from_files(path=(store, "copies/raw")).register("raw")``, does so here: each
transfer copy holding a file of the new version (at, above or below the dataset's paths) gets ``registered`` in
its marker. A folder a step committed needs nothing: nothing writes into a committed output.

Cost: one existence check for each folder level above each dataset path, the listing the registration makes
anyway for folders below (a glob: one glob per folder level of its pattern), and a read and a write for each
copy found.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_mlpipe.datasets.paths import DataPath, fixed_part
from airflow_mlpipe.exceptions import MlpipeError
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore

log = logging.getLogger(__name__)


def marker_folders_above(store: Datastore, data_path: DataPath) -> set[str]:
    """Folders at and above the fixed part of ``data_path`` that hold a completion marker (one request each)."""
    parts = [p for p in fixed_part(data_path).split("/") if p]
    if parts and not data_path.is_glob and store.isfile(data_path.path):
        parts = parts[:-1]  # a path naming one file: its folder and those above
    return {folder for depth in range(len(parts), 0, -1) if store.is_complete(folder := "/".join(parts[:depth]))}


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
    written = []
    for data_path in data_paths:
        store = Datastore.get(data_path.datastore)
        folders = marker_folders_above(store, data_path) | below.get(store.name, set())
        if data_path.is_glob:
            folders |= marker_folders_in_glob(store, data_path)
        for folder in sorted(folders):
            if not any(path.startswith(folder + "/") for path in files.get(store.name, ())):
                continue
            if _mark(store, folder, record):
                written.append((store.name, folder))
    return written


def _mark(store: Datastore, folder: str, record: Any) -> bool:
    try:
        marker = store.read_marker(folder)
    except (MlpipeError, ValueError, TypeError, OSError):
        return False
    if "transfer" not in marker or marker.get("step_run_id") or marker.get("registered"):
        return False  # not a plain transfer copy, or one a version already keeps
    store.mark_complete(folder, {**marker, "registered": {"name": record.name, "version": record.version}})
    log.info(
        "dataset %s version %d names files of the transfer copy %r in datastore %r: later transfers into it keep them",
        record.name,
        record.version,
        folder,
        store.name,
    )
    return True
