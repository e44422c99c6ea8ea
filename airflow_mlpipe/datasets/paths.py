"""Where a dataset's files are: ``(datastore, "relative/path-or-glob")`` pairs, and the files they match."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.core.paths import check_user_path, is_reserved
from airflow_mlpipe.exceptions import DatasetError
from airflow_mlpipe.storage.confine import check_files_resolved
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore

_DATASTORE_URL = re.compile(r"^(?:mlpipe|azureml)://datastores/(?P<name>[^/]+)/paths/(?P<path>.*)$")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class DataPath:
    """A path or glob inside a named datastore."""

    datastore: str
    path: str

    @property
    def is_glob(self) -> bool:
        return any(c in self.path for c in _GLOB_CHARS)

    def to_dict(self) -> dict[str, str]:
        return {"datastore": self.datastore, "path": self.path}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataPath:
        return cls(str(data["datastore"]), str(data["path"]))

    def __str__(self) -> str:
        return f"mlpipe://datastores/{self.datastore}/paths/{self.path}"


def to_data_path(value: object) -> DataPath:
    """Accept ``(Datastore | name, "path")``, ``DataPath``, or ``mlpipe://datastores/NAME/paths/PATH``
    (``azureml://`` as written for Azure ML works too)."""
    if isinstance(value, DataPath):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        store, path = value
        name = store.name if isinstance(store, Datastore) else store
        if not isinstance(name, str) or not isinstance(path, str):
            raise DatasetError(f"dataset path {value!r}: expected (Datastore or datastore name, 'relative/path')")
        return DataPath(name, check_user_path(path, argument="dataset path", datastore=name))
    if isinstance(value, str):
        match = _DATASTORE_URL.match(value)
        if match:
            name = match["name"]
            return DataPath(name, check_user_path(match["path"], argument="dataset path", datastore=name))
        raise DatasetError(
            f"dataset path {value!r} is not a datastore path: write (Datastore.get('NAME'), 'folder/file.csv') or "
            "'mlpipe://datastores/NAME/paths/folder/file.csv'"
        )
    raise DatasetError(
        f"dataset path {value!r} has type {type(value).__name__}: write (Datastore.get('NAME'), 'folder/*.csv')"
    )


def to_data_paths(values: object) -> tuple[DataPath, ...]:
    if isinstance(values, (str, DataPath)) or (
        isinstance(values, tuple)
        and len(values) == 2
        and isinstance(values[1], str)
        and not isinstance(values[0], tuple)
    ):
        items: Iterable[object] = [values]
    elif isinstance(values, Iterable):
        items = values
    else:
        items = [values]
    paths = tuple(to_data_path(v) for v in items)
    if not paths:
        raise DatasetError("a dataset needs at least one path: Dataset.File.from_files(path=[(datastore, 'x/*.csv')])")
    return paths


def fixed_part(data_path: DataPath) -> str:
    """The path up to its first glob segment (the whole path when it is no glob)."""
    if not data_path.is_glob:
        return data_path.path
    fixed = []
    for part in data_path.path.split("/"):
        if any(c in part for c in _GLOB_CHARS):
            break
        fixed.append(part)
    return "/".join(fixed)


def match_files(data_path: DataPath, store: Datastore, *, markers: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """Files (relative path → fsspec info) that a path matches: a file, every file below a folder, or a glob.

    Completion markers are not data and never match, nor does anything below a ``_mlpipe/`` folder at any depth
    (a glob like ``*/x.json`` could reach the datastore's own; a folder, the records of a datastore whose root lies
    inside it); on a local store a file reached through a symbolic link that leads out of the datastore is
    refused. ``markers`` collects the folders whose completion marker the listing met.
    """
    if data_path.is_glob:
        found = store.glob(data_path.path, detail=True)
    elif data_path.path and store.isfile(data_path.path):
        found = {data_path.path: store.info(data_path.path)}
    else:
        found = store.list(data_path.path, recursive=True, detail=True) if store.exists(data_path.path) else {}
    found = {p: i for p, i in found.items() if not is_reserved(p)}
    if markers is not None:
        markers.update(p.rpartition("/")[0] for p in found if p.rsplit("/", 1)[-1] == COMPLETE_MARKER)
    found = {p: i for p, i in found.items() if p.rsplit("/", 1)[-1] != COMPLETE_MARKER}
    odd = sorted(p for p in found if any(part in ("", ".", "..") for part in p.split("/")))
    if odd:  # an object store takes any key; a download or a mount would write such a file out of its folder
        raise DatasetError(
            f"dataset path {str(data_path)!r}: datastore {store.name!r} holds {len(odd)} object(s) whose names have "
            f"empty, '.' or '..' parts ({', '.join(repr(p) for p in odd[:3])}), which no download or mount can "
            "write inside its folder: rename those objects, or narrow the path so that it leaves them out"
        )
    check_files_resolved(store, found, argument=f"dataset path {str(data_path)!r}")
    if not found:
        raise DatasetError(
            f"dataset path {str(data_path)!r} matches no file in datastore {store.name!r} ({store.url}); "
            "check the path, or upload the data first"
        )
    return found


def relative_in_dataset(datastore: str, path: str, paths: Iterable[DataPath]) -> str:
    """A file's path relative to the folder its dataset path names (the glob's folder part for globs); the
    file's own name for a path naming the file itself."""
    for data_path in paths:
        if data_path.datastore != datastore:
            continue
        base = fixed_part(data_path)
        if not data_path.is_glob and base == path:
            return path.rsplit("/", 1)[-1]
        prefix = base + "/" if base else ""
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path
