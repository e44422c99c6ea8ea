"""The dataset registry: one immutable JSON record per dataset version, kept in the default datastore.

Layout: ``_mlpipe/registry/datasets/<name>/<version>.json``, plus ``<name>/_latest.json``. A version is allocated
by creating its record with the datastore's create-if-absent primitive, so racing registrations each get their own
version, with no gap and no duplicate, and a record, once written, is never changed: the records are the source
of truth.

``_latest.json`` (``{"format", "name", "version"}``) is a hint that keeps every lookup's cost flat in the number
of versions, as Delta Lake's ``_last_checkpoint`` does for its numbered commit files: it is advanced with
conditional writes (compare-and-swap on the store's ETag) and never moves back. It may lag (a registration that
died between creating its record and advancing the pointer): a reader probes the versions after it, one read
each until one is missing, and advances it. A registry written before pointers existed gets its pointer from one
listing, once.

Every record is sealed when it is created and checked when it is read (``datasets.seal``): a record whose name or
version disagrees with its file name, whose manifest disagrees with its digest, or whose content disagrees with
its seal is refused with ``TamperedRecordError``, never served.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_mlpipe.core.checks import check_bool, check_str_mapping, shown
from airflow_mlpipe.core.model import Record
from airflow_mlpipe.core.secrets import scrub_labels, scrub_text
from airflow_mlpipe.datasets.manifest import Manifest
from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.datasets.paths import DataPath, relative_in_dataset
from airflow_mlpipe.datasets.seal import SEAL_FIELD, seal_of, seal_problem, sealed_bytes
from airflow_mlpipe.exceptions import (
    ConfigError,
    DatasetError,
    DatasetNotFoundError,
    DatastoreAccessError,
    TamperedRecordError,
)
from airflow_mlpipe.fingerprint.hashing import hash_bytes
from airflow_mlpipe.storage.conditional import Tagged, list_children, read_tagged, replace_if_unchanged
from airflow_mlpipe.storage.datastore import Datastore, OnDefaultDatastore

log = logging.getLogger(__name__)

REGISTRY_ROOT = "_mlpipe/registry/datasets"
_MD5_HEX = re.compile(r"[0-9a-f]{32}")
RECORD_FORMAT = 1
LATEST_POINTER = "_latest.json"
POINTER_FORMAT = 1


@dataclass(frozen=True)
class DatasetRecord(Record):
    FORMAT = RECORD_FORMAT
    LABEL = "dataset record"

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


def check_register_arguments(
    name: object, description: object, tags: object, create_new_version: object
) -> tuple[str | None, dict[str, str], bool]:
    """``register``'s arguments as documented, before any storage call: ``description`` a string or None,
    ``tags`` a mapping of strings to strings (or None), ``create_new_version`` True or False (``"no"`` is
    truthy). Returns them checked."""
    owner = f"dataset {check_name(name)!r}: register"
    if description is not None and not isinstance(description, str):
        raise ConfigError(
            f"{owner}: description {shown(description)} must be a string or None, not {type(description).__name__}; "
            "e.g. description='sales, cleaned'"
        )
    checked_tags = check_str_mapping(owner, "tags", tags, example="{'stage': 'clean'}")
    return description, checked_tags, check_bool(owner, "create_new_version", create_new_version)


class DatasetRegistry(OnDefaultDatastore):
    """Registered datasets in a datastore (the default datastore unless one is given)."""

    root: str = REGISTRY_ROOT  # a subclass keeps other records (models) the same way under another folder

    def __init__(self, store: Datastore | None = None) -> None:
        self._store = store

    def _record_path(self, name: str, version: int) -> str:
        return f"{self.root}/{name}/{version}.json"

    def _pointer_path(self, name: str) -> str:
        return f"{self.root}/{name}/{LATEST_POINTER}"

    # -- listing (for callers that need every name or version; lookups never list) --------------------------
    def names(self, *, limit: int | None = None, start_after: str = "") -> list[str]:
        """Registered dataset names in the store's order; with ``limit``, one page of them after
        ``start_after`` (one listing request, see :meth:`names_page`)."""
        if limit is not None:
            return self.names_page(limit=limit, start_after=start_after)[0]
        if not self.store.exists(self.root):
            return []
        found = (p.rsplit("/", 1)[-1] for p in self.store.list(self.root))
        return sorted((n for n in found if not n.startswith(".")), key=lambda n: n + "/")

    def names_page(self, *, limit: int = 100, start_after: str = "") -> tuple[list[str], str | None]:
        """Up to ``limit`` names after ``start_after``, and the ``start_after`` of the next page (None: the last)."""
        names, more = list_children(self.store, self.root, limit=limit, start_after=start_after)
        return names, (names[-1] if more and names else None)

    def versions(self, name: str) -> list[int]:
        """Every version number of ``name``, from a listing of its folder (the cost grows with the versions:
        lookups use :meth:`latest_version` instead)."""
        check_name(name, existing=True)
        folder = f"{self.root}/{name}"
        if not self.store.exists(folder):
            return []
        found = []
        for path in self.store.list(folder):
            stem = path.rsplit("/", 1)[-1].removesuffix(".json")
            if stem.isdigit():
                found.append(int(stem))
        return sorted(found)

    # -- lookups ----------------------------------------------------------------------------------------------
    def latest_version(self, name: str) -> int:
        """The latest version number of ``name`` (0 when none is registered): the pointer and one probe."""
        check_name(name, existing=True)
        return self._latest_number(name)[0]

    def get(self, name: str, version: int | str = "latest") -> DatasetRecord:
        """A version's record: "latest" reads the pointer, probes the version after it and reads the record
        (three requests whatever the number of versions); a number reads that record alone (one request)."""
        check_name(name, existing=True)
        if version == "latest":
            latest = self._latest(name)
            if latest is None:
                raise self._unknown(name)
            return latest
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise DatasetError(f"dataset {name!r}: version {version!r} is not a number or 'latest'") from None
        record = self._read_record(name, number) if number > 0 else None
        if record is not None:
            return record
        newest = self.latest_version(name)
        if not newest:
            raise self._unknown(name)
        raise DatasetNotFoundError(f"dataset {name!r} has no version {number}; versions: {version_span(newest)}")

    def listed(self, name: str, version: int | str = "latest") -> DatasetRecord | None:
        """For listings: the record, or None when it is refused (``TamperedRecordError``), with a warning naming
        it, so that one bad record hides itself, not the others."""
        try:
            return self.get(name, version)
        except TamperedRecordError as exc:
            log.warning("skipped in the listing: %s", exc)
            return None

    def registered_by(self, name: str, step_run_id: str, *, since: str) -> DatasetRecord | None:
        """The version of ``name`` that step run ``step_run_id`` registered, looking back from the latest version
        only as far as versions created at ``since`` or later (one read a version: the cost follows recent
        activity, not the number of versions). What makes registering a committed attempt's outputs idempotent."""
        check_name(name)
        record = self._latest(name)
        while record is not None:
            if record.lineage.get("step_run_id") == step_run_id:
                return record
            if record.created_at and record.created_at < since:
                return None
            record = self._read_record(name, record.version - 1) if record.version > 1 else None
        return None

    # -- registration -----------------------------------------------------------------------------------------
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
        """Add a version unless the latest one has the same content. Returns (record, created).

        Four requests when nothing races: read the pointer, read the latest record, create the next version's
        record (create-if-absent: the one step that decides the version), advance the pointer."""
        description, tags, create_new_version = check_register_arguments(name, description, tags, create_new_version)
        # The first registration by this code seals what older code registered (and marks the registry sealed,
        # so that a record without a seal met later is refused, never sealed): one check a process.
        seal_legacy_records(self.store)
        pointer = self._read_pointer(name)
        version = pointer.version if pointer.version is not None else self._listed_latest(name)
        current = self._read_record(name, version) if version else None
        if version and current is None:  # the pointer names a record that is gone (deleted by hand)
            version = self._listed_latest(name)
            current = self._read_record(name, version) if version else None
        for _ in range(10_000):
            if current is not None and current.same_content(kind, definition, manifest):
                following = self._read_record(name, version + 1)  # the same as the latest only if it is the latest
                if following is None:
                    self._advance(name, version, pointer)
                    return current, False
                version, current = version + 1, following
                continue
            if current is not None and not create_new_version:
                raise DatasetError(
                    f"dataset {name!r} already exists (version {version}) with other content; pass "
                    f"create_new_version=True to add version {version + 1}, or choose another name"
                )
            record = DatasetRecord(
                name=name,
                version=version + 1,
                kind=kind,
                definition=dict(definition),
                manifest=manifest,
                # free text, printed by `mlpipe datasets show/list`: stored without the credentials it shows
                description=scrub_text(description or ""),
                tags=scrub_labels(tags or {}),
                created_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                lineage=dict(lineage or {}),
            )
            if self.store.create_if_absent(self._record_path(name, record.version), _record_bytes(record)):
                log.info("registered dataset %s version %d (%d files)", name, record.version, len(manifest))
                self._advance(name, record.version, pointer)
                return record, True
            version += 1  # another registration took it: compare with that one, then try the next
            current = self._read_record(name, version)
        raise DatasetError(f"dataset {name!r}: could not allocate a version after many attempts")  # pragma: no cover

    # -- the latest pointer -----------------------------------------------------------------------------------
    def _latest(self, name: str) -> DatasetRecord | None:
        """The latest record: the latest number (see :meth:`_latest_number`), and its record unless the probes
        already read it."""
        version, record = self._latest_number(name)
        if record is None and version:
            record = self._read_record(name, version)
            if record is None:  # the pointer names a record that is gone (deleted by hand): trust a listing
                version = self._listed_latest(name)
                return self._read_record(name, version) if version else None
        return record

    def _latest_number(self, name: str) -> tuple[int, DatasetRecord | None]:
        """The latest version (0: none) from the pointer up, one read a version until one is missing (normally
        the probe of the version after the pointer's), with the last record those reads found (None when the
        pointer was right); a pointer found behind is advanced."""
        pointer = self._read_pointer(name)
        version = pointer.version if pointer.version is not None else self._listed_latest(name)
        record = None
        while (following := self._read_record(name, version + 1)) is not None:
            record, version = following, version + 1
        if version and version != pointer.version:
            try:
                self._advance(name, version, pointer)
            except DatastoreAccessError as exc:  # a reader may lack write access: the next writer repairs it
                log.warning("dataset %s: could not advance its latest pointer to %d: %s", name, version, exc)
        return version, record

    def _listed_latest(self, name: str) -> int:
        """The highest version in a listing: for registries written before pointers existed, once per name."""
        return max(self.versions(name), default=0)

    def _read_pointer(self, name: str) -> _Pointer:
        tagged = read_tagged(self.store, self._pointer_path(name))
        if tagged is None:
            return _Pointer(None, None)
        try:
            version = int(json.loads(tagged.data)["version"])
        except (ValueError, KeyError, TypeError):
            log.warning("dataset %s: its latest pointer is unreadable; rebuilding it from a listing", name)
            return _Pointer(None, tagged)
        return _Pointer(version, tagged)

    def _advance(self, name: str, version: int, pointer: _Pointer) -> None:
        """Move the pointer up to ``version`` with conditional writes, never down: a writer that lost a race
        rereads it and stops once it names ``version`` or later."""
        path = self._pointer_path(name)
        data = json.dumps({"format": POINTER_FORMAT, "name": name, "version": version}, sort_keys=True).encode()
        for _ in range(100):
            if pointer.version is not None and pointer.version >= version:
                return
            if replace_if_unchanged(self.store, path, data, pointer.tagged.tag if pointer.tagged else None):
                return
            pointer = self._read_pointer(name)
        log.warning("dataset %s: gave up advancing its latest pointer to %d (readers still find it)", name, version)

    def _read_record(self, name: str, version: int) -> DatasetRecord | None:
        path = self._record_path(name, version)
        try:
            data = self.store.read_bytes(path)
        except FileNotFoundError:
            return None
        where = f"{path!r} in datastore {self.store.name!r}"
        try:
            return verified_record(data, name, version, where=where)
        except TamperedRecordError:
            if not seal_legacy_records(self.store):  # a registry from before seals: sealed once, then read again
                raise
            return verified_record(self.store.read_bytes(path), name, version, where=where)

    def _unknown(self, name: str) -> DatasetNotFoundError:
        known = ", ".join(repr(n) for n in self.names(limit=20)) or "none"
        return DatasetNotFoundError(
            f"no dataset named {name!r} is registered in datastore {self.store.name!r}; registered: {known}"
        )


@dataclass(frozen=True)
class _Pointer:
    """The pointer as read: the version it names (None when it is missing or unreadable) and its tag."""

    version: int | None
    tagged: Tagged | None


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
    return sealed_bytes(record.to_dict())


# Written once every record of a datastore's registry carries a seal (``seal_legacy_records``).
SEALED_MARKER = "_mlpipe/registry/sealed.json"
_LEGACY_RECORD = re.compile(r"^_mlpipe/registry/(?:.+/)?[^/]+/(\d+)\.json$")
_sealed: set[str] = set()  # datastores (by URL) this process saw sealed
_sealing = threading.Lock()


def seal_legacy_records(store: Datastore) -> bool:
    """Seal the registry records written before records carried seals, once per datastore: a migration that
    lists every record, run the first time a record without a seal is met. Only records that agree with their
    file name and whose manifest agrees with its digest are sealed. Afterwards (``SEALED_MARKER``), a record
    without a seal is refused. True when this call sealed the registry (its records may read differently now)."""
    if store.url in _sealed:
        return False
    with _sealing:
        if store.url in _sealed or store.exists(SEALED_MARKER):
            _sealed.add(store.url)
            return False
        sealed = 0
        try:
            paths = [p for p in store.list("_mlpipe/registry", recursive=True) if _LEGACY_RECORD.match(p)]
        except FileNotFoundError:
            paths = []
        for path, data in store.read_many(paths).items():
            if isinstance(data, Exception):
                continue
            try:
                stored = json.loads(data)
            except ValueError:
                continue
            if not isinstance(stored, dict) or SEAL_FIELD in stored:
                continue
            name, number = str(stored.get("name")), int(_LEGACY_RECORD.match(path)[1])  # type: ignore[index]
            folder = path.rsplit("/", 2)[-2]
            if folder != name:
                continue
            try:
                verified_record({**stored, SEAL_FIELD: seal_of(stored)}, name, number, where=path)
            except DatasetError:
                continue  # disagrees with its name or its manifest: left unsealed, so refused
            store.write_bytes(path, sealed_bytes(stored))
            sealed += 1
        sealed_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        store.write_json(SEALED_MARKER, {"sealed_at": sealed_at, "records": sealed})
        _sealed.add(store.url)
        if sealed:
            log.warning("sealed %d dataset registry records written before records carried seals", sealed)
        return True


def verified_record(data: bytes | Mapping[str, Any], name: str, version: int, *, where: str) -> DatasetRecord:
    """The record stored as ``data`` at the file of ``name`` version ``version``, once it is shown to be what a
    registration wrote there; ``TamperedRecordError`` naming the record (``where``) and what disagrees when not."""
    try:
        stored = json.loads(data) if isinstance(data, (bytes, str)) else dict(data)
        record = DatasetRecord.from_dict({k: v for k, v in stored.items() if k != SEAL_FIELD})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(
            f"dataset {name!r} version {version}: its record {where} is unreadable ({type(exc).__name__}: {exc}); "
            "restore it from a backup or delete it"
        ) from None
    problems = []
    if (record.name, record.version) != (name, version):
        problems.append(f"it names dataset {record.name!r} version {record.version}, not the file's")
    manifest = stored.get("manifest") or {}
    summary = record.manifest.summary()
    wrong = [f"{k} {manifest.get(k)!r} (the entries give {v!r})" for k, v in summary.items() if manifest.get(k) != v]
    if wrong:
        problems.append("its manifest disagrees with its entries: " + ", ".join(wrong))
    sealed = seal_problem(stored)
    if sealed:
        problems.append(sealed)
    if problems:
        raise TamperedRecordError(
            f"dataset {name!r} version {version}: the registry record {where} is refused, as "
            + "; ".join(problems)
            + ". It is not served: if a step script or a person wrote or changed it, restore it from a backup or "
            "delete it and register the data again"
        )
    # Records written before registrations scrubbed them keep a credential pasted into a description or tag:
    # what is read (and shown by the CLI and the UI) is scrubbed the same way.
    description, tags = scrub_text(record.description or ""), scrub_labels(record.tags or {})
    if description != (record.description or "") or tags != dict(record.tags or {}):
        record = replace(record, description=description, tags=tags)
    return record


def version_span(latest: int) -> str:
    """Versions are numbered from 1 without gaps: "1, 2, 3", or "1..250"."""
    if latest <= 6:
        return ", ".join(map(str, range(1, latest + 1)))
    return f"1..{latest}"
