"""Materialise a step's inputs on the compute: downloaded copies, read-only views, or direct references."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.datasets.dataset import AbstractDataset, materialize_view
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.datastore import Datastore


def materialize_inputs(inputs: tuple[Mapping[str, Any], ...], workdir: str) -> dict[str, dict[str, Any]]:
    """For each input: ``{"mode", "path" (local, or None for direct), "dataset" (reference or None), ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for spec in inputs:
        name, mode, source = str(spec["name"]), str(spec["mode"]), spec["source"]
        target = os.path.join(workdir, "inputs", name)
        if source["type"] == "dataset":
            out[name] = _dataset_input(name, mode, source["dataset"], target, spec.get("path_on_compute"))
        elif source["type"] == "folder":
            out[name] = _folder_input(name, mode, source, target)
        else:
            raise ConfigError(f"input {name!r}: unknown source type {source['type']!r}")
    return out


def _dataset_input(name: str, mode: str, ref: Mapping[str, Any], target: str, path_on_compute: Any) -> dict[str, Any]:
    dataset = AbstractDataset.from_dict(ref)
    info: dict[str, Any] = {"mode": mode, "dataset": dict(ref), "path": None}
    if mode == "direct":
        return info
    if path_on_compute:
        target = os.path.join(os.path.dirname(target), str(path_on_compute))
    os.makedirs(target, exist_ok=True)
    if mode == "download":
        dataset.download(target, overwrite=True)  # type: ignore[attr-defined]
    else:
        materialize_view(dataset, target)  # type: ignore[arg-type]
    info["path"] = _single_file_or_folder(target)
    return info


def _folder_input(name: str, mode: str, source: Mapping[str, Any], target: str) -> dict[str, Any]:
    store = Datastore.get(str(source["datastore"]))
    path = str(source["path"])
    store.read_marker(path)  # an upstream output that is not complete is never read
    info: dict[str, Any] = {"mode": mode, "dataset": None, "datastore": store.name, "datastore_path": path}
    if mode == "mount" and store.is_local:
        info["path"] = store.full_path(path)  # the committed folder itself: no copy
        return info
    store.download(path, target)
    info["path"] = target
    return info


def _single_file_or_folder(folder: str) -> str:
    """A dataset of one file is handed over as that file's path (as Azure ML does); otherwise the folder."""
    entries = os.listdir(folder)
    if len(entries) == 1 and os.path.isfile(os.path.join(folder, entries[0])):
        return os.path.join(folder, entries[0])
    return folder
