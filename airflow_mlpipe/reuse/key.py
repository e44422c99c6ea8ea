"""The reuse key: an explicit, listed structure of everything that decides a step's outputs, hashed canonically.

As Kubeflow's cache key and flytekit's cache: the key is a frozen value of named components, serialised with
``json.dumps(sort_keys=True, separators=(",", ":"))`` after a format salt and hashed (XXH3-128), so it can be
printed, stored and compared component by component when the explainer says why a step ran.

Components, each JSON-able:

- ``script``: the script's path in the source folder.
- ``source``: the digest of the source snapshot's tree (``source_directory`` minus ignored files).
- ``hash_paths``: the digest of the tree of every ``hash_paths`` entry (None when the step lists none).
- ``arguments``: the command line as items (``str`` text, ``param`` with this run's value, ``input`` and
  ``output`` by name): never a path on a machine, so the same step keys the same on every worker.
- ``inputs``: per input name, its mode and the digest of its DATA CONTENT (a manifest digest), plus the read
  options of a dataset: never its name or version, so equal data under another version still reuses.
- ``outputs``: per output name, datastore, destination template (``{run-id}`` unexpanded), mode, upload
  settings and the dataset name it is registered under.
- ``environment``: image, pip packages, environment variables and interpreter. Not the compute target: where
  a step runs does not change what it computes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import xxhash

KEY_FORMAT = "mlpipe-reuse-key/1"  # the salt: a new serialisation or new components get a new format
COMPONENTS = ("script", "source", "hash_paths", "arguments", "inputs", "outputs", "environment")


@dataclass(frozen=True)
class ReuseKey:
    script: str
    source: str
    hash_paths: str | None = None
    arguments: tuple[Mapping[str, Any], ...] = ()
    inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)

    def components(self) -> dict[str, Any]:
        """The components as plain JSON values (what the index and run records keep)."""
        return _plain({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    def canonical(self) -> str:
        """The exact text that is hashed: the format salt and the components, canonically serialised."""
        return json.dumps({"format": KEY_FORMAT, **self.components()}, sort_keys=True, separators=(",", ":"))

    @cached_property
    def digest(self) -> str:
        return xxhash.xxh3_128_hexdigest(self.canonical().encode("utf-8"))

    @classmethod
    def from_components(cls, data: Mapping[str, Any]) -> ReuseKey:
        """The key ``components()`` described (``KeyError``/``TypeError`` for a damaged description)."""
        return cls(
            script=str(data["script"]),
            source=str(data["source"]),
            hash_paths=data.get("hash_paths"),
            arguments=tuple(data.get("arguments") or ()),
            inputs=dict(data.get("inputs") or {}),
            outputs=dict(data.get("outputs") or {}),
            environment=dict(data.get("environment") or {}),
        )


def _plain(value: Any) -> Any:
    """Tuples to lists and mappings to dicts, so that a key read back from JSON compares equal."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
