"""Reuse for ``DataTransferOperator``: the same key, index, history and explanations as script steps.

A folder copy is keyed like a step whose "script" is the copy itself: the source's data content (store-kept
ETag/MD5 or our hash, never downloads), the destination as declared and the copy's settings. A hit means an
earlier copy of the same content is still complete at its destination, so nothing is listed or copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.datasets.manifest import Manifest, ManifestEntry
from airflow_mlpipe.fingerprint.identity import identities
from airflow_mlpipe.fingerprint.tree import Tree
from airflow_mlpipe.reuse.step_key import StepFingerprint, fingerprint_step
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore

TRANSFER_SCRIPT = "(data transfer)"


def transfer_fingerprint(
    *, source: Mapping[str, Any], destination: Mapping[str, Any], settings: Mapping[str, Any]
) -> StepFingerprint:
    """:param source: an input spec (``{"name", "mode", "source": {"type": "dataset" | "folder", ...}}``).
    :param destination: an output spec (``name``, ``datastore``, ``path_template``, ``mode``, ``registration``)."""
    arguments = [{"t": "str", "v": f"--{key}={value}"} for key, value in sorted(settings.items())]
    return fingerprint_step(
        script_name=TRANSFER_SCRIPT,
        source=Tree({}),
        hash_paths=None,
        arguments=arguments,
        inputs=[source],
        outputs=[destination],
        environment={},
    )


def seal_folder(store: Datastore, path: str) -> Manifest:
    """Add the folder's manifest (per-file identities and digest) to the completion marker the copy engine
    wrote, so that reuse can verify the folder later as it verifies script step outputs."""
    marker = store.read_marker(path)
    infos = {
        p: i for p, i in store.list(path, recursive=True, detail=True).items() if not p.endswith("/" + COMPLETE_MARKER)
    }
    manifest = Manifest.of(ManifestEntry(store.name, ident) for ident in identities(store, infos).values())
    if marker.get("digest") != manifest.digest:
        store.mark_complete(path, {**marker, **manifest.to_dict()})
    return manifest
