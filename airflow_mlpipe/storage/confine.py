"""Paths users give stay inside their datastore: outside mlpipe's own folder, and (on a local store) still inside
the root once symbolic links are resolved, so that no read or write follows a link out of the datastore."""

from __future__ import annotations

import os

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
