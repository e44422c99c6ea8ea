"""Step outputs on the compute: a staging folder per output, committed (and marked complete) only after the
script succeeded, so a failed or killed step never leaves an output that looks complete."""

from __future__ import annotations

import fnmatch
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.datasets.manifest import Manifest, ManifestEntry
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.fingerprint.identity import identities
from airflow_mlpipe.storage.datastore import Datastore


@dataclass
class OutputPlan:
    name: str
    store: Datastore
    path: str
    mode: str
    overwrite: bool
    source_globs: tuple[str, ...]
    staging: str

    @property
    def in_place(self) -> bool:
        """Local datastore, mount mode: stage next to the destination and rename into place (no copy)."""
        return self.store.is_local and self.mode == "mount"


def prepare_outputs(outputs: tuple[Mapping[str, Any], ...], workdir: str) -> dict[str, OutputPlan]:
    plans = {}
    for spec in outputs:
        name = str(spec["name"])
        store = Datastore.get(str(spec["datastore"]))
        path = str(spec["path"])
        mode = str(spec.get("mode", "mount"))
        overwrite = bool(spec.get("overwrite", False))
        if mode == "upload" and not overwrite and store.is_complete(path):
            raise ConfigError(
                f"output {name!r}: {path!r} in datastore {store.name!r} already holds a complete output; use "
                "as_upload(overwrite=True) or a destination with {run-id}"
            )
        if store.is_local and mode == "mount":
            dest = store.full_path(path)
            staging = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.staging-{uuid.uuid4().hex[:8]}")
        else:
            staging = os.path.join(workdir, "outputs", name)
        os.makedirs(staging, exist_ok=True)
        plans[name] = OutputPlan(name, store, path, mode, overwrite, tuple(spec.get("source_globs") or ()), staging)
    return plans


def discard(plans: Mapping[str, OutputPlan]) -> None:
    for plan in plans.values():
        shutil.rmtree(plan.staging, ignore_errors=True)


def commit(plan: OutputPlan) -> Manifest:
    """Put the staged files at the destination, then write the completion marker (with the manifest)."""
    store, path = plan.store, plan.path
    store.clear_complete(path)
    if plan.in_place:
        dest = store.full_path(path)
        old = None
        if os.path.lexists(dest):
            old = f"{dest}.old-{uuid.uuid4().hex[:8]}"
            os.rename(dest, old)
        os.rename(plan.staging, dest)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    else:
        _upload(plan)
    infos = {
        p: i for p, i in store.list(path, recursive=True, detail=True).items() if not p.endswith("/_MLPIPE_COMPLETE")
    }
    manifest = Manifest.of(ManifestEntry(store.name, ident) for ident in identities(store, infos).values())
    store.mark_complete(path, {"step_output": plan.name, **manifest.to_dict()})
    return manifest


def _upload(plan: OutputPlan) -> None:
    from airflow_mlpipe.storage.transfer import transfer

    store, path = plan.store, plan.path
    if store.exists(path):
        store.delete(path, recursive=True)
    files = []
    for dirpath, _, filenames in os.walk(plan.staging):
        for fname in filenames:
            rel = os.path.relpath(os.path.join(dirpath, fname), plan.staging).replace(os.sep, "/")
            if not plan.source_globs or any(fnmatch.fnmatch(rel, g) for g in plan.source_globs):
                files.append(rel)
    if not files:
        return
    staging_store = Datastore(f"{plan.name}-staging", "file://" + os.path.abspath(plan.staging))
    transfer(staging_store, "", store, path, kind="directory", overwrite=True, files=files)
