"""Committed outputs are never written into, from inside or from around: a write whose destination holds a
committed output (its folder's ``_MLPIPE_COMPLETE``), lies inside one, or holds one below it would change bytes
that a step's commit and perhaps a registered dataset version name.

``committed_around(store, path)`` finds such a marker: at ``path``, at each folder above it (one request each), and
below it (one listing of ``path``, which a write to it lists or replaces anyway). Step outputs, transfers and v1
uploads refuse their destination when it finds one, whatever ``overwrite`` says; a transfer writing again into its
own earlier copy of the same source passes its ``own`` check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore


class CommittedOutputError(ConfigError):
    """A write would change a committed output (and so the bytes a commit or a registered version names)."""


def committed_around(store: Datastore, path: str, *, below: bool = True) -> list[str]:
    """The folders (relative paths) of committed outputs at, above and (with ``below``) inside ``path``."""
    parts = [p for p in path.strip("/").split("/") if p]
    found = [folder for depth in range(len(parts), 0, -1) if store.is_complete(folder := "/".join(parts[:depth]))]
    if below and parts:
        try:
            listed = store.list(path, recursive=True)
        except (FileNotFoundError, NotADirectoryError):
            listed = []
        found += [rel.rpartition("/")[0] for rel in listed if rel.rsplit("/", 1)[-1] == COMPLETE_MARKER]
    return list(dict.fromkeys(found))


def refuse_committed_around(
    store: Datastore,
    path: str,
    *,
    argument: str,
    own: Callable[[str, dict[str, Any]], bool] | None = None,
    below: bool = True,
) -> None:
    """``CommittedOutputError`` naming the committed folder (and its registered version) when ``path`` is at, in
    or around one; ``own(folder, marker)`` says a marker is the writer's own earlier copy (then it passes)."""
    for folder in committed_around(store, path, below=below):
        try:
            marker = store.read_marker(folder)
        except (ValueError, TypeError, OSError):
            marker = {}
        if own is None or not own(folder, marker):
            _refuse(store, path, folder, marker, argument)


def _refuse(store: Datastore, path: str, folder: str, marker: dict[str, Any], argument: str) -> None:
    who = f"step run {marker['step_run_id']}" if marker.get("step_run_id") else "an earlier step run or transfer"
    registered = marker.get("registered")
    if isinstance(registered, dict) and registered.get("name"):
        who += f", registered as dataset {registered['name']!r} version {registered.get('version')}"
    where = (
        "is" if folder == path.strip("/") else ("lies inside" if path.strip("/").startswith(folder + "/") else "holds")
    )
    target = "the committed output" if where != "holds" else f"the committed output {folder!r}"
    raise CommittedOutputError(
        f"{argument}: {path!r} in datastore {store.name!r} {where} {target} of {who}"
        + (f" ({folder!r})" if where == "lies inside" else "")
        + "; a committed output is never written into, whatever overwrite says, so that the bytes a commit and a "
        "registered version name never change: write to a new folder, e.g. with {run-id} in a step's destination"
    )


def refuse_committed_for_files(store: Datastore, paths: list[str], *, argument: str) -> None:
    """For writes of single files (a v1 upload): none may lie in a committed output. Each folder above them is
    asked once, however many files share it."""
    folders = sorted({"/".join(p.split("/")[:depth]) for p in paths for depth in range(1, p.count("/") + 1)})
    for folder in folders:
        if store.is_complete(folder):
            inside = next(p for p in paths if p.startswith(folder + "/"))
            try:
                marker = store.read_marker(folder)
            except (ValueError, TypeError, OSError):
                marker = {}
            _refuse(store, inside, folder, marker, argument)
