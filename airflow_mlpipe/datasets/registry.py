"""The dataset registry: one immutable JSON record per dataset version, kept in the default datastore.

Layout: ``_mlpipe/registry/datasets/<name>/<version>.json``. A version is allocated by creating its record with
the datastore's create-if-absent primitive, so racing registrations each get their own version, with no gap and
no duplicate, and a record, once written, is never changed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.datasets.manifest import Manifest
from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.datasets.paths import DataPath, relative_in_dataset
from airflow_mlpipe.exceptions import DatasetError, DatasetNotFoundError
from airflow_mlpipe.fingerprint.hashing import hash_bytes
from airflow_mlpipe.storage.datastore import Datastore, OnDefaultDatastore

log = logging.getLogger(__name__)

REGISTRY_ROOT = "_mlpipe/registry/datasets"
_MD5_HEX = re.compile(r"[0-9a-f]{32}")
RECORD_FORMAT = 1


@dataclass(frozen=True)
class DatasetRecord:
    name: str
    version: int
    kind: str
    definition: Mapping[str, Any]
    manifest: Manifest
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    created_at: str = ""
    lineage: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "definition": dict(self.definition),
            "manifest": self.manifest.to_dict(),
            "description": self.description,
            "tags": dict(self.tags),
            "created_at": self.created_at,
            "lineage": dict(self.lineage),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetRecord:
        return cls(
            name=str(data["name"]),
            version=int(data["version"]),
            kind=str(data["kind"]),
            definition=dict(data.get("definition") or {}),
            manifest=Manifest.from_dict(data.get("manifest") or {}),
            description=str(data.get("description") or ""),
            tags=dict(data.get("tags") or {}),
            created_at=str(data.get("created_at") or ""),
            lineage=dict(data.get("lineage") or {}),
        )

    def same_content(self, kind: str, definition: Mapping[str, Any], manifest: Manifest) -> bool:
        """True when registering (kind, definition's read options, manifest) again would add nothing: the same
        files (by their paths inside the dataset) with the same bytes, wherever they are stored. A step run
        whose output equals the latest version's, byte for byte, in a folder of its own adds no version."""
        if self.kind != kind or self.definition.get("options") != definition.get("options"):
            return False
        if self.manifest.digest == manifest.digest:
            return True
        if not (_hashes_content(self.manifest) and _hashes_content(manifest)):
            return False  # an ETag names one object, not its bytes: equal bytes elsewhere need not compare equal
        return content_digest(self.definition, self.manifest) == content_digest(definition, manifest)


class DatasetRegistry(OnDefaultDatastore):
    """Registered datasets in a datastore (the default datastore unless one is given)."""

    def __init__(self, store: Datastore | None = None) -> None:
        self._store = store

    def _record_path(self, name: str, version: int) -> str:
        return f"{REGISTRY_ROOT}/{name}/{version}.json"

    def names(self) -> list[str]:
        if not self.store.exists(REGISTRY_ROOT):
            return []
        return sorted(p.rsplit("/", 1)[-1] for p in self.store.list(REGISTRY_ROOT))

    def versions(self, name: str) -> list[int]:
        check_name(name)
        folder = f"{REGISTRY_ROOT}/{name}"
        if not self.store.exists(folder):
            return []
        found = []
        for path in self.store.list(folder):
            stem = path.rsplit("/", 1)[-1].removesuffix(".json")
            if stem.isdigit():
                found.append(int(stem))
        return sorted(found)

    def get(self, name: str, version: int | str = "latest") -> DatasetRecord:
        check_name(name)
        versions = self.versions(name)
        if not versions:
            known = ", ".join(repr(n) for n in self.names()[:20]) or "none"
            raise DatasetNotFoundError(
                f"no dataset named {name!r} is registered in datastore {self.store.name!r}; registered: {known}"
            )
        if version == "latest":
            number = versions[-1]
        else:
            try:
                number = int(version)
            except (TypeError, ValueError):
                raise DatasetError(f"dataset {name!r}: version {version!r} is not a number or 'latest'") from None
            if number not in versions:
                raise DatasetNotFoundError(f"dataset {name!r} has no version {number}; versions: {_ranges(versions)}")
        path = self._record_path(name, number)
        try:
            return DatasetRecord.from_dict(self.store.read_json(path))
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(
                f"dataset {name!r} version {number}: its record {path!r} in datastore {self.store.name!r} is "
                f"unreadable ({type(exc).__name__}: {exc}); restore it from a backup or delete it"
            ) from None

    def registered_by(self, name: str, step_run_id: str, *, since: str) -> DatasetRecord | None:
        """The version of ``name`` that step run ``step_run_id`` registered, looking back from the latest version
        only as far as versions created at ``since`` or later (so the cost follows recent activity, not the
        number of versions). What makes registering a committed attempt's outputs idempotent."""
        for version in reversed(self.versions(name)):
            record = self.get(name, version)
            if record.lineage.get("step_run_id") == step_run_id:
                return record
            if record.created_at and record.created_at < since:
                return None
        return None

    def register(
        self,
        *,
        name: str,
        kind: str,
        definition: Mapping[str, Any],
        manifest: Manifest,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        lineage: Mapping[str, Any] | None = None,
        create_new_version: bool = True,
    ) -> tuple[DatasetRecord, bool]:
        """Add a version unless the latest one has the same content. Returns (record, created)."""
        check_name(name)
        if tags is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise DatasetError(f"dataset {name!r}: tags must map strings to strings, got {tags!r}")
        for _ in range(10_000):
            versions = self.versions(name)
            latest = versions[-1] if versions else 0
            if latest:
                current = self.get(name, latest)
                if current.same_content(kind, definition, manifest):
                    return current, False
                if not create_new_version:
                    raise DatasetError(
                        f"dataset {name!r} already exists (version {latest}) with other content; pass "
                        f"create_new_version=True to add version {latest + 1}, or choose another name"
                    )
            record = DatasetRecord(
                name=name,
                version=latest + 1,
                kind=kind,
                definition=dict(definition),
                manifest=manifest,
                description=description or "",
                tags=dict(tags or {}),
                created_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                lineage=dict(lineage or {}),
            )
            if self.store.create_if_absent(self._record_path(name, record.version), _record_bytes(record)):
                log.info("registered dataset %s version %d (%d files)", name, record.version, len(manifest))
                return record, True
        raise DatasetError(f"dataset {name!r}: could not allocate a version after many attempts")  # pragma: no cover


def _hashes_content(manifest: Manifest) -> bool:
    """Every file identified by its bytes: our XXH3, a store-kept MD5, or an S3 ETag of a plain upload (the MD5
    of the bytes). Azure's ETags, and S3's of multipart or KMS-encrypted objects, name a write, not the bytes."""
    return all(
        e.identity.kind in ("xxh3", "md5") or (e.identity.kind == "etag" and _MD5_HEX.fullmatch(e.identity.value))
        for e in manifest.entries
    )


def content_digest(definition: Mapping[str, Any], manifest: Manifest) -> str:
    """A digest of the files' paths inside the dataset, sizes and content identities, not of where they are."""
    paths = [DataPath.from_dict(p) for p in definition.get("paths") or ()]
    canon = sorted(
        [relative_in_dataset(e.datastore, e.path, paths), e.identity.size, e.identity.token] for e in manifest.entries
    )
    return hash_bytes(json.dumps(canon, separators=(",", ":")).encode("utf-8"))


def _record_bytes(record: DatasetRecord) -> bytes:
    return json.dumps(record.to_dict(), sort_keys=True, indent=1).encode("utf-8")


def _ranges(numbers: list[int]) -> str:
    if len(numbers) <= 6:
        return ", ".join(map(str, numbers))
    return f"{numbers[0]}..{numbers[-1]}"
