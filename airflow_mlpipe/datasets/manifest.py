"""A dataset's pinned manifest: each file's path, size and content identity, with one digest over all."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.fingerprint.hashing import hash_bytes
from airflow_mlpipe.fingerprint.identity import FileIdentity


@dataclass(frozen=True)
class ManifestEntry:
    """One file: which datastore it lives in, where, and its identity."""

    datastore: str
    identity: FileIdentity

    @property
    def path(self) -> str:
        return self.identity.path

    def to_dict(self) -> dict[str, Any]:
        return {"datastore": self.datastore, **self.identity.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestEntry:
        return cls(datastore=str(data["datastore"]), identity=FileIdentity.from_dict(data))


@dataclass(frozen=True)
class Manifest:
    entries: tuple[ManifestEntry, ...]

    @classmethod
    def of(cls, entries: Iterable[ManifestEntry]) -> Manifest:
        return cls(tuple(sorted(entries, key=lambda e: (e.datastore, e.path))))

    @property
    def digest(self) -> str:
        """Canonical hash of every (datastore, path, size, identity): equal manifests, equal digests."""
        canon = [[e.datastore, e.path, e.identity.size, e.identity.token] for e in self.entries]
        return hash_bytes(json.dumps(canon, separators=(",", ":")).encode("utf-8"))

    @property
    def total_size(self) -> int:
        return sum(e.identity.size for e in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def summary(self) -> dict[str, Any]:
        return {"files": len(self.entries), "bytes": self.total_size, "digest": self.digest}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "entries": [e.to_dict() for e in self.entries]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        return cls.of(ManifestEntry.from_dict(e) for e in data.get("entries", ()))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """In records (``core.model``), a manifest is stored in its own compact form."""
        from airflow_mlpipe.core.model import coded

        return coded(lambda m: m.to_dict(), cls.from_dict)

    def diff(self, other: Manifest) -> dict[str, list[str]]:
        """Paths added, removed and changed going from ``self`` to ``other``."""
        mine = {(e.datastore, e.path): e.identity.token for e in self.entries}
        theirs = {(e.datastore, e.path): e.identity.token for e in other.entries}
        return {
            "added": sorted(p for (_, p) in theirs.keys() - mine.keys()),
            "removed": sorted(p for (_, p) in mine.keys() - theirs.keys()),
            "changed": sorted(p for k, (_, p) in ((k, k) for k in mine.keys() & theirs.keys()) if mine[k] != theirs[k]),
        }
