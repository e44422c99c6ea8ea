"""Writing the reuse index entry of a step run that completed: only when every output it declares is complete
(its marker holds the manifest the run record names) and registered where the step asked for it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.exceptions import DatastoreNotFoundError, IncompleteFolderError
from airflow_mlpipe.reuse.index import ReuseEntry, ReuseIndex
from airflow_mlpipe.reuse.key import ReuseKey
from airflow_mlpipe.steps.records import now_iso
from airflow_mlpipe.storage.datastore import Datastore

log = logging.getLogger(__name__)


def index_run(index: ReuseIndex, key: ReuseKey, record: Mapping[str, Any]) -> ReuseEntry | None:
    """Index the outputs of the completed run ``record`` under ``key`` (the key its spec holds); returns the
    entry, or None (with the reason logged) when the run cannot be reused."""
    problem = unindexable(key, record)
    if problem is not None:
        log.warning("step run %s is not indexed for reuse: %s", record.get("step_run_id"), problem)
        return None
    entry = ReuseEntry(
        key=key.digest,
        step_run_id=str(record["step_run_id"]),
        dag_id=str(record["dag_id"]),
        task_id=str(record["task_id"]),
        created_at=now_iso(),
        outputs=tuple(dict(o) for o in record.get("outputs") or ()),
        components=key.components(),
    )
    index.put(entry)
    return entry


def unindexable(key: ReuseKey, record: Mapping[str, Any]) -> str | None:
    """Why the run ``record`` may not be indexed, or None."""
    if record.get("status") != "Completed":
        return f"its status is {record.get('status')!r}"
    outputs = {str(o.get("name")): o for o in record.get("outputs") or ()}
    for name, declared in key.outputs.items():
        output = outputs.get(name)
        if output is None:
            return f"output {name} is missing from its run record"
        if declared.get("registration") and not output.get("registered"):
            return f"output {name} was not registered as dataset {declared['registration']!r}"
        try:
            marker = Datastore.get(str(output["datastore"])).read_marker(str(output["path"]))
        except (IncompleteFolderError, DatastoreNotFoundError, FileNotFoundError) as exc:
            return f"output {name} is not complete ({exc})"
        if marker.get("digest") != (output.get("manifest") or {}).get("digest"):
            return f"output {name} changed after the run committed it"
    return None
