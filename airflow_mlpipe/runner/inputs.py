"""Materialise a step's inputs on the compute: exactly the files pinned in its spec, each checked against its pin.

Every input of a spec carries ``pin``: the files (path, size, content identity) its reuse key was derived from.
The runner reads those and no others: a downloaded or mounted input is a set of local copies, each verified
(``verify_copies``) before the script starts; a ``direct`` input hands the script a dataset object restricted to
the pin, which checks the files again when the script reads them. A file changed since planning is an error
naming it: the attempt fails and its retry plans again. Mounts are read-only copies, never the producer's folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.datasets.dataset import AbstractDataset, fetch_copies, materialize_view
from airflow_mlpipe.datasets.manifest import Manifest
from airflow_mlpipe.exceptions import ConfigError


def materialize_inputs(inputs: tuple[Mapping[str, Any], ...], workdir: str) -> dict[str, dict[str, Any]]:
    """For each input: ``{"mode", "path" (local, or None for direct), "dataset" (reference or None), ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for spec in inputs:
        name, mode, source = str(spec["name"]), str(spec["mode"]), spec["source"]
        if not spec.get("pin"):
            raise ConfigError(f"input {name!r}: the step spec pins no files for it (written by an older version?)")
        manifest = Manifest.from_dict(spec["pin"]["manifest"])
        target = os.path.join(workdir, "inputs", name)
        if source["type"] == "dataset":
            out[name] = _dataset_input(mode, source["dataset"], manifest, target, spec.get("path_on_compute"))
        elif source["type"] == "folder":
            out[name] = _folder_input(name, mode, source, manifest, target)
        else:
            raise ConfigError(f"input {name!r}: unknown source type {source['type']!r}")
    return out


def _dataset_input(
    mode: str, ref: Mapping[str, Any], manifest: Manifest, target: str, path_on_compute: Any
) -> dict[str, Any]:
    pinned_ref = {**ref, "pin": manifest.to_dict()}
    dataset = AbstractDataset.from_dict(pinned_ref)
    info: dict[str, Any] = {"mode": mode, "dataset": pinned_ref, "path": None}
    if mode == "direct":
        return info
    if path_on_compute:
        target = os.path.join(os.path.dirname(target), str(path_on_compute))
    os.makedirs(target, exist_ok=True)
    if mode == "download":
        dataset.download(target, overwrite=True)  # type: ignore[attr-defined]
    else:
        materialize_view(dataset, target)  # type: ignore[arg-type]
    info["path"] = _file_or_folder(dataset, manifest, target)
    return info


def _folder_input(name: str, mode: str, source: Mapping[str, Any], manifest: Manifest, target: str) -> dict[str, Any]:
    datastore, path = str(source["datastore"]), str(source["path"]).rstrip("/")
    plan = []
    for entry in manifest.entries:
        if entry.datastore != datastore or not entry.path.startswith(path + "/"):
            raise ConfigError(f"input {name!r}: its pin names {entry.path!r}, which is not in {datastore}:{path}")
        plan.append((entry, os.path.join(target, *entry.path[len(path) + 1 :].split("/"))))
    os.makedirs(target, exist_ok=True)
    fetch_copies(plan)
    if mode == "mount":
        for _, local in plan:
            os.chmod(local, 0o444)
    return {"mode": mode, "dataset": None, "datastore": datastore, "datastore_path": path, "path": target}


def _file_or_folder(dataset: AbstractDataset, manifest: Manifest, folder: str) -> str:
    """A dataset defined by one file's path is handed over as that file's path (as Azure ML does); a dataset
    defined by a folder or a glob is handed over as the folder, however many files it holds now."""
    paths = dataset.data_paths
    entries = manifest.entries
    if len(paths) == 1 and not paths[0].is_glob and len(entries) == 1 and entries[0].path == paths[0].path:
        return os.path.join(folder, os.listdir(folder)[0])
    return folder
