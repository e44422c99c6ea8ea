"""Who read each dataset version: a newest-first index kept per version, so the dataset page lists the readers
of a version with one listing and one batch of reads, however many step runs there are.

Layout: ``_mlpipe/index/lineage/<dataset>/<version>/<day>/<inverted time>_<step_run_id>.json`` (see
``storage.paged``), each a small summary of the step run that read the version. An entry is written with the final
record of a step run that read a registered version (``steps.run_index.write_summaries``, on every compute and
with or without the UI plugin; records written before are indexed by ``mlpipe runs reindex`` or the first
listing): an input taken by name and version, or the output of an earlier step that registered it (found through
that step's record).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.steps import records
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.paged import list_page, newest_first_name, write_listed

log = logging.getLogger(__name__)

LINEAGE_ROOT = "_mlpipe/index/lineage"
_STEP_RUN_ID = re.compile(r"[A-Za-z0-9_.\-]{1,255}")
READER_FORMAT = 1


def readers_folder(name: str, version: int) -> str:
    return f"{LINEAGE_ROOT}/{name}/{version}"


def versions_read(record: Mapping[str, Any], store: Datastore) -> list[tuple[str, int, str]]:
    """(dataset, version, input name) of each registered version the step run read."""
    found: list[tuple[str, int, str]] = []
    producers: dict[str, dict[str, Any] | None] = {}
    for entry in record.get("inputs") or ():
        if not isinstance(entry, Mapping):
            continue
        ref = entry.get("dataset")
        if isinstance(ref, Mapping) and ref.get("name") and str(ref.get("version", "")).isdigit():
            found.append((str(ref["name"]), int(ref["version"]), str(entry.get("name"))))
            continue
        path = entry.get("path")
        if not path or not entry.get("producer"):
            continue
        for registered in _registered_at(str(path), str(entry.get("datastore")), store, producers):
            found.append((registered[0], registered[1], str(entry.get("name"))))
    return found


def _registered_at(
    path: str, datastore: str, store: Datastore, producers: dict[str, dict[str, Any] | None]
) -> list[tuple[str, int]]:
    """The versions an earlier step registered from the output folder ``path``: its record is the one named by
    a segment of the path (outputs go to ``.../{run-id}/...`` by default)."""
    out = []
    for segment in path.split("/"):
        if "." not in segment:
            continue
        if segment not in producers:
            producers[segment] = records.find_record(segment, store) if _plausible(segment) else None
        producer = producers[segment]
        for output in (producer or {}).get("outputs") or ():
            registered = output.get("registered") if isinstance(output, Mapping) else None
            if registered and output.get("path") == path and output.get("datastore") == datastore:
                out.append((str(registered["name"]), int(registered["version"])))
    return out


def _plausible(segment: str) -> bool:
    """A path segment that could name a step run (``dag.run.task.try.unique``)."""
    return bool(_STEP_RUN_ID.fullmatch(segment)) and segment.count(".") >= 3


def note_readers(record: Mapping[str, Any], store: Datastore) -> int:
    """Index the step run ``record`` under every registered version it read; returns how many."""
    read = versions_read(record, store)
    if not read:
        return 0
    moment = str(record.get("created_at") or record.get("started_at") or records.now_iso())
    step_run_id = str(record["step_run_id"])
    objects = {}
    for name, version, input_name in read:
        body = {
            "format": READER_FORMAT,
            "step_run_id": step_run_id,
            "dag_id": record.get("dag_id"),
            "run_id": record.get("run_id"),
            "task_id": record.get("task_id"),
            "status": record.get("status"),
            "input": input_name,
            "at": moment,
        }
        path = f"{readers_folder(name, version)}/{newest_first_name(moment, step_run_id)}"
        objects[path] = json.dumps(body, sort_keys=True).encode("utf-8")
    write_listed(store, objects)  # on Azure the readers page is then one listing request
    return len(objects)


def readers_page(store: Datastore, name: str, version: int, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ``limit`` step runs that read ``name`` version ``version``."""
    page = list_page(store, readers_folder(name, version), limit=limit)
    bodies: dict[str, bytes | Exception] = dict(page.inline)
    bodies.update(store.read_many([p for p in page.paths if p not in page.inline]))
    rows = []
    for path in page.paths:
        body = bodies.get(path)
        try:
            if isinstance(body, bytes):
                rows.append(json.loads(body))
        except ValueError:
            log.warning("ignoring the unreadable lineage entry %s", path)
    return rows
