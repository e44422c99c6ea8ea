"""Paths users give stay inside their datastore: outside mlpipe's own folder, and (on a local store) still inside
the root once symbolic links are resolved, so that no read or write follows a link out of the datastore."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.core.paths import RESERVED_ROOT, check_user_path, is_reserved
from airflow_mlpipe.exceptions import PathOutsideDatastoreError, ReservedPathError
from airflow_mlpipe.storage.datastore import Datastore


def confined_path(store: Datastore, path: str, *, argument: str) -> str:
    """``path`` normalised and checked: not in ``_mlpipe/`` and, on a local store, not leading out of the root
    (or into ``_mlpipe/``) through a symbolic link. Returns the normalised relative path."""
    rel = check_user_path(path, argument=argument, datastore=store.name)
    if store.protocol == "file":
        check_resolved(store, store.full_path(rel), argument=argument, shown=path)
    return rel


def check_resolved(store: Datastore, full: str, *, argument: str, shown: str) -> None:
    """A local backend path whose resolved target is inside the datastore root and outside ``_mlpipe/``."""
    root = os.path.realpath(store.root)
    real = os.path.realpath(full)
    inside = os.path.relpath(real, root).replace(os.sep, "/")
    if inside == ".." or inside.startswith("../"):
        raise PathOutsideDatastoreError(
            f"{argument}: datastore {store.name!r}: path {shown!r} leads through a symbolic link to {real}, "
            f"outside the datastore root {root}; replace the link by a real folder or file inside the datastore"
        )
    if is_reserved(inside):
        raise ReservedPathError(
            f"{argument}: datastore {store.name!r}: path {shown!r} leads through a symbolic link into "
            f"{RESERVED_ROOT + '/'!r}, which mlpipe reserves for its own records; remove the link"
        )


def check_files_resolved(store: Datastore, infos: Mapping[str, Mapping[str, Any]], *, argument: str) -> None:
    """``check_resolved`` for listed files (relative path → fsspec info) of a local store: each folder once (a link
    among its ancestors), and each file that is itself a link."""
    if store.protocol != "file":
        return
    folders: set[str] = set()
    for path, info in infos.items():
        folder = path.rpartition("/")[0]
        if folder not in folders:
            folders.add(folder)
            check_resolved(store, store.full_path(folder), argument=argument, shown=folder or path)
        if info.get("islink", True):
            check_resolved(store, store.full_path(path), argument=argument, shown=path)
