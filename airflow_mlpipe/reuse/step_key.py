"""A step run's fingerprint: its reuse key, and next to it what the explainer needs to say which part changed.

Built from the same descriptions the step spec is made of (argument items, input and output specs), so the key
and what the runner is told to do cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.fingerprint.tree import Tree
from airflow_mlpipe.reuse.inputs import DETAIL_ENTRIES_LIMIT, input_identity
from airflow_mlpipe.reuse.key import ReuseKey
from airflow_mlpipe.steps.snapshot import tree_path


@dataclass(frozen=True)
class StepFingerprint:
    """:param details: per component, a small description: tree digests and counts, parameter values, and
    per input its origin, counts and (up to ``DETAIL_ENTRIES_LIMIT`` files) its manifest entries."""

    key: ReuseKey
    details: Mapping[str, Any]
    # The scanned source tree, so that the explainer names changed files before the snapshot is uploaded.
    source_tree: Tree | None = field(default=None, compare=False, repr=False)

    @property
    def digest(self) -> str:
        return self.key.digest


def fingerprint_step(
    *,
    script_name: str,
    source: Tree,
    hash_paths: Tree | None,
    arguments: Sequence[Mapping[str, Any]],
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
    environment: Mapping[str, Any],
) -> StepFingerprint:
    """The fingerprint of a step about to run.

    :param arguments: argument items (``{"t": "str", "v"}``, ``{"t": "param", "name", "value"}``, ``{"t":
        "input" | "output", "name"}``): names and values only, never paths.
    :param inputs: input specs as the step spec holds them (pinned datasets, upstream folders).
    :param outputs: output specs (``OutputFileDatasetConfig.to_dict()``; resolved paths are ignored).
    :param environment: the step's software as ``describe_environment`` gives it.
    """
    identities = {str(spec["name"]): input_identity(spec) for spec in inputs}
    key = ReuseKey(
        script=script_name,
        source=source.digest,
        hash_paths=hash_paths.digest if hash_paths is not None else None,
        arguments=tuple(dict(a) for a in arguments),
        inputs={name: ident.component for name, ident in identities.items()},
        outputs={str(o["name"]): output_component(o) for o in outputs},
        environment=dict(environment),
    )
    details = {
        "source": {
            "digest": source.digest,
            "files": len(source),
            "bytes": source.size,
            "tree": tree_path(source.digest),
        },
        "hash_paths": _tree_detail(hash_paths) if hash_paths is not None else None,
        "parameters": {str(a["name"]): a.get("value") for a in arguments if a.get("t") == "param"},
        "inputs": {name: dict(ident.detail) for name, ident in identities.items()},
    }
    return StepFingerprint(key, details, source)


def output_component(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Where and how an output is written, as declared: ``{run-id}`` stays a placeholder, so every run of an
    unchanged step has the same component."""
    registration = spec.get("registration") or None
    return {
        "datastore": spec["datastore"],
        "destination": spec["path_template"],
        "mode": spec.get("mode", "mount"),
        "overwrite": bool(spec.get("overwrite", False)),
        "source_globs": list(spec.get("source_globs") or ()),
        "registration": registration["name"] if registration else None,
    }


def _tree_detail(tree: Tree) -> dict[str, Any]:
    entries = None
    if len(tree) <= DETAIL_ENTRIES_LIMIT:
        entries = {path: f"{e.size}:{e.digest}:{e.flag}" for path, e in tree.entries.items()}
    return {"digest": tree.digest, "files": len(tree), "bytes": tree.size, "entries": entries}
