"""A step input's identity for the reuse key: the digest of its DATA CONTENT, never its name or location alone.

- a registered dataset version: the manifest pinned at registration (no storage read beyond the registry);
- an unregistered dataset definition: the manifest of the files it matches now, from the hash or ETag the store
  keeps (our own XXH3 for local files, through the stat cache); remote data is never downloaded for this, except
  files of a store that keeps no identity at all, which are read and hashed (the detail says so);
- an upstream output of the same DAG run: the manifest digest in that folder's completion marker, so a reused
  upstream (whose outputs are the earlier folders) keeps its downstream reusable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.datasets.dataset import AbstractDataset
from airflow_mlpipe.datasets.manifest import Manifest
from airflow_mlpipe.datasets.paths import DataPath
from airflow_mlpipe.exceptions import IncompleteFolderError
from airflow_mlpipe.fingerprint.hashing import HASH_NAME
from airflow_mlpipe.storage.datastore import Datastore

# Per-file entries are kept for the explainer ("file part-0.csv content changed") up to this many files; a
# larger input keeps its digest and counts only, so run records and history stay small.
DETAIL_ENTRIES_LIMIT = 2000


@dataclass(frozen=True)
class InputIdentity:
    """``component``: what enters the key. ``detail``: what the explainer shows (origin, counts, entries)."""

    component: Mapping[str, Any]
    detail: Mapping[str, Any]


def pin_input(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The input spec with ``pin``: the exact files (path, size, content identity) the step may read, as the
    storage holds them now. The reuse key is derived from this pin and the runner reads exactly these files.

    Raises ``IncompleteFolderError`` for an upstream output without its completion marker, and the dataset
    errors of ``current_manifest`` for a definition that matches no file.
    """
    if spec.get("pin"):
        return dict(spec)
    source = spec["source"]
    if source["type"] == "dataset":
        dataset = AbstractDataset.from_dict(source["dataset"])
        record = dataset.record
        manifest = record.manifest if record is not None else dataset.current_manifest()
        kind = record.kind if record is not None else dataset.kind
        return {**spec, "pin": {"manifest": manifest.to_dict(), "kind": kind, "options": dataset.options}}
    else:
        marker = Datastore.get(str(source["datastore"])).read_marker(str(source["path"]))
        manifest = Manifest.from_dict(marker)
        if marker.get("digest") not in (None, manifest.digest):
            raise IncompleteFolderError(
                f"datastore {source['datastore']!r}: the completion marker of {source['path']!r} names digest "
                f"{marker.get('digest')} but lists files of digest {manifest.digest}; the folder's marker was "
                "changed by hand: run the step that writes it again"
            )
    return {**spec, "pin": {"manifest": manifest.to_dict()}}


def pinned_manifest(spec: Mapping[str, Any]) -> Manifest:
    return Manifest.from_dict(spec["pin"]["manifest"])


def input_identity(spec: Mapping[str, Any]) -> InputIdentity:
    """The identity of one input as ``PythonScriptOperator.input_specs`` describes it: from its pin (pinned
    first when the spec holds none), so the key and what the runner reads cannot differ."""
    spec = pin_input(spec)
    source = spec["source"]
    manifest = pinned_manifest(spec)
    component: dict[str, Any] = {"mode": spec["mode"]}
    if spec.get("path_on_compute"):
        component["path_on_compute"] = spec["path_on_compute"]
    if source["type"] == "dataset":
        dataset = source["dataset"]
        registered = "name" in dataset
        origin: dict[str, Any] = (
            {"origin": "registered", "dataset": f"{dataset['name']}:{dataset.get('version')}"}
            if registered
            else {"origin": "definition", "paths": [_path_text(p) for p in dataset.get("paths", ())]}
        )
        component.update(kind=spec["pin"]["kind"], options=spec["pin"]["options"], content=manifest.digest)
        detail = {**origin, **_manifest_detail(manifest.summary(), _entries(manifest, prefix=""))}
        read = 0 if registered else _read_to_hash(manifest)
        if read:
            detail["read_to_hash"] = read
        return InputIdentity(component, detail)
    folder = str(source["path"])
    component["content"] = manifest.digest
    detail = {
        "origin": "upstream",
        "producer": source.get("producer"),
        "location": f"{source['datastore']}:{folder}",
        **_manifest_detail(manifest.summary(), _entries(manifest, prefix=folder.rstrip("/") + "/")),
        "digest": manifest.digest,
    }
    return InputIdentity(component, detail)


def _path_text(path: Mapping[str, Any]) -> str:
    return str(DataPath.from_dict(path))


def _manifest_detail(summary: Mapping[str, Any], entries: dict[str, str] | None) -> dict[str, Any]:
    return {"files": summary["files"], "bytes": summary["bytes"], "digest": summary["digest"], "entries": entries}


def _entries(manifest: Manifest, *, prefix: str) -> dict[str, str] | None:
    """``path → "size:kind:value"``; paths inside an upstream folder are relative to it (the folder's name
    changes from run to run, the files in it need not). Files of several datastores are told apart by name."""
    if len(manifest) > DETAIL_ENTRIES_LIMIT:
        return None
    several = len({e.datastore for e in manifest.entries}) > 1
    out = {}
    for e in manifest.entries:
        path = e.path[len(prefix) :] if prefix and e.path.startswith(prefix) else e.path
        out[f"{e.datastore}:{path}" if several else path] = f"{e.identity.size}:{e.identity.token}"
    return out


def _read_to_hash(manifest: Manifest) -> int:
    """How many files of remote stores had to be read to be identified (the store kept no hash for them)."""
    count = 0
    protocols: dict[str, str] = {}
    for e in manifest.entries:
        if e.identity.kind != HASH_NAME:
            continue
        if e.datastore not in protocols:
            protocols[e.datastore] = Datastore.get(e.datastore).protocol
        count += protocols[e.datastore] not in ("file", "memory")
    return count
